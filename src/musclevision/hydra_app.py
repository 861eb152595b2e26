"""Turn a ``task(cfg)`` function into a console script running under Hydra with our config tree."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from musclevision.oserrors import check_writable, describe_write_error, is_full_or_read_only
from musclevision.paths import config_dir, project_root

# Output is for people: drop library chatter nobody can act on, keep real warnings and errors.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning internals
warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system.*")  # we launch via submitit


class _DropAdverts(logging.Filter):
    """Lightning's adverts, and its "TPU available: False" lines for accelerators this machine does not have (a line
    that says a GPU is used stays: on a T4 node it is what a person checks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "litlogger" not in message and not re.match(r"(GPU|TPU|HPU) available: False", message)


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropAdverts())


_started = False
log = logging.getLogger("musclevision")


class _HeldStderr(io.TextIOBase):
    """sys.stderr while Hydra composes the config: what is written is kept until ``release``, then written through to
    the real stream. A library that keeps a reference to it meanwhile (a logging handler) still reaches the terminal."""

    def __init__(self, real):
        self.real, self.buffer, self.holding = real, io.StringIO(), True

    def write(self, text: str) -> int:
        return self.buffer.write(text) if self.holding else self.real.write(text)

    def flush(self) -> None:
        if not self.holding:
            self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    @property
    def encoding(self) -> str:
        return self.real.encoding

    def release(self, keep: bool) -> None:
        self.holding = False
        if keep and self.buffer.getvalue():
            self.real.write(self.buffer.getvalue())
            self.real.flush()
        self.buffer = io.StringIO()


_held: _HeldStderr | None = None
# launchers that call mark_task_started (in this process) right after composing the jobs' configs
HOLDING_LAUNCHERS = (
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "hydra_plugins.musclevision_launchers.SlurmLauncher",
)


def mark_task_started() -> None:
    """Called when work begins (the task, or a launcher submitting jobs): later exits are not usage errors."""
    global _started
    _started = True
    release_stderr()


def hold_stderr() -> None:
    """Keep what is written to stderr while Hydra reads the command line: a refused option then shows as our one line
    instead of Hydra's block (see main()); anything else is passed on unchanged once the config is composed."""
    global _held
    if _held is None:
        _held = sys.stderr = _HeldStderr(sys.stderr)


def release_stderr(keep: bool = True) -> None:
    """Back to the real stderr, with what was held written to it (``keep``) or dropped."""
    global _held
    if _held is not None:
        if sys.stderr is _held:
            sys.stderr = _held.real
        _held.release(keep)
        _held = None


def report_error(tool: str, exc: BaseException | str, code: int = 2) -> int:
    """Print a task's expected error (bad path, bad value: exit code 2; full disk: 1) on stderr, where scripts look."""
    print(f"{tool}: error: {exc}", file=sys.stderr)
    return code


class WritableOutput(Callback):
    """Checks the run (sweep) folder before Hydra creates it: a full or read-only disk is one line, not
    the traceback Hydra prints for its own mkdir (configs/hydra/default.yaml registers this)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        release_stderr()  # the config is composed: nothing more to hold
        _check_output_folder(config, "hydra.run.dir")
        launcher = OmegaConf.select(config, "hydra.runtime.choices").get("hydra/launcher")
        if launcher and launcher != "basic":  # a launcher sends sweep jobs away; a single run stays on this machine
            log.warning("hydra/launcher=%s is used by sweeps only (-m): this single run runs here, on this machine", launcher)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # Hydra's basic launcher composes each job's config next (a misspelt swept key fails there) and runs the jobs
        # here, the first of which releases stderr; ours releases it when it submits. Any other launcher: now.
        if OmegaConf.select(config, "hydra.launcher._target_") not in HOLDING_LAUNCHERS:
            release_stderr()
        _check_output_folder(config, "hydra.sweep.dir")


def _check_output_folder(config: DictConfig, key: str) -> None:
    folder = Path(str(OmegaConf.select(config, key)))
    try:
        check_writable(folder)
    except OSError as exc:
        if not (is_full_or_read_only(exc) or isinstance(exc, PermissionError)):
            raise
        mark_task_started()  # not a usage error: exit 1
        message = f"{describe_write_error(exc, folder)} ({key}=<folder> or paths.log_dir=<folder> moves it)"
        sys.exit(report_error(f"musclevision-{config.get('task_name', 'run')}", message, code=1))


ErrorKinds = tuple[type[BaseException], ...]


def user_mistake(exc: BaseException, kinds: ErrorKinds) -> BaseException | None:
    """The bad path or value behind ``exc`` (Hydra's instantiate wraps what a class raised), else None. An option a
    class does not take (``+model.net.levels=5`` for an LSTM, a misspelt key in a config file) is one too."""
    if isinstance(exc, InstantiationException):
        cause = exc.__cause__
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause) and ValueError in kinds:
            key = re.search(r"full_key: (\S+)", str(exc))
            return ValueError(f"{key.group(1) + ': ' if key else ''}{cause} (an option it does not take: check its "
                              "spelling, or the config it belongs to)")  # fmt: skip
        exc = cause
    return exc if isinstance(exc, kinds) else None


# Per tool (config name): a check of one job's composed config that reads and runs nothing, and the errors that are
# the user's. A launcher that sends jobs away (SLURM) runs it on every job first: a bad value is named before the
# sweep waits in a queue for it.
PRECHECKS: dict[str, tuple[Callable[[DictConfig], None], ErrorKinds]] = {}


def hydra_entry(config_name: str, task: Callable[[DictConfig], object],
                user_errors: ErrorKinds = (FileNotFoundError, ValueError),
                precheck: Callable[[DictConfig], None] | None = None) -> Callable[[], None]:  # fmt: skip
    """A ``main()`` for ``[project.scripts]``: runs ``task`` with Hydra, exits with its int result.

    A non-int result (a metric, for sweepers such as Optuna) means success; an error in the
    command line itself exits 2, an error while the task runs exits 1. In a single run, one of
    ``user_errors`` (a bad path or value, which the message names) is one line on stderr and
    exit 2, its traceback kept in the run folder; a full or read-only disk is one line naming
    the file and the cause, exit 1; in a sweep both fail the job as they are. ``precheck``: see PRECHECKS.
    """
    tool = f"musclevision-{config_name}"
    if precheck is not None:
        PRECHECKS[config_name] = (precheck, user_errors)

    def main() -> None:
        # configs/paths resolves every location from this, so commands work from any cwd.
        os.environ.setdefault("MUSCLEVISION_ROOT", str(project_root()))
        os.environ.setdefault("WANDB_SILENT", "true")  # train.py prints the one line that matters (where, how to sync)
        outcome: dict[str, object] = {}

        @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
        def app(cfg: DictConfig):
            mark_task_started()
            outcome["jobs"] = int(outcome.get("jobs", 0)) + 1
            try:
                outcome["result"] = task(cfg)
            except MissingMandatoryValue as exc:  # a required option (ckpt_path=???) not given
                outcome["result"] = report_error(tool, f"{exc.full_key}=<value> is required")
            except Exception as exc:
                disk = user_mistake(exc, (OSError,))
                disk = disk if disk is not None and is_full_or_read_only(disk) else None  # a full disk: the cause, 1 line
                mistake = user_mistake(exc, user_errors) if disk is None else describe_write_error(disk)
                local_sweep = HydraConfig.get().mode == RunMode.MULTIRUN and _one_after_another()
                if mistake is None or (HydraConfig.get().mode == RunMode.MULTIRUN and not local_sweep):
                    raise  # a bug, or a job sent away (its launcher lists it with its log): the traceback helps
                trace = Path(HydraConfig.get().runtime.output_dir) / "error.txt"
                try:
                    trace.write_text(traceback.format_exc())
                    saved = f"traceback in {trace}"
                except OSError:
                    saved = f"its traceback could not be saved in {trace.parent} either"
                if local_sweep:  # one job's bad value: said, recorded, and the sweep goes on (summary at the end)
                    job = HydraConfig.get().job
                    swept = {a.split("=", 1)[0] for a in sys.argv[1:] if "=" in a and "," in a.split("=", 1)[1]}
                    mine = list(HydraConfig.get().overrides.task)
                    shown = [o for o in mine if o.split("=", 1)[0] in swept] or mine  # what tells this job apart
                    what = f"job #{job.num} ({' '.join(shown) or 'no overrides'})"
                    log.error("%s failed: %s (%s)", what, mistake, saved)
                    outcome.setdefault("failed", []).append(f"{what}: {mistake}")
                    return 1 if disk else 2
                outcome["result"] = report_error(tool, f"{mistake}\n  ({saved})", code=1 if disk else 2)
            return outcome["result"]

        hold_stderr()
        try:
            app()
        except SystemExit as exc:
            # Hydra exits 1 for every error; one raised before the task ran is a bad command line
            # (unknown key, malformed override), which our scripts report as usage errors: 2.
            if not _started and exc.code == 1:
                hint = misspelt_option(config_name, sys.argv[1:])
                release_stderr(keep=not hint)  # a misspelt option: our one line says it all (Hydra's took seven)
                if hint:
                    report_error(tool, hint)
                sys.exit(2)
            raise
        finally:
            release_stderr()
        if failed := outcome.get("failed"):
            jobs = int(outcome.get("jobs", len(failed)))
            which = (
                f"all {jobs} sweep jobs failed"
                if len(failed) == jobs
                else f"{len(failed)} of {jobs} sweep jobs failed (the others ran)"
            )
            report_error(tool, f"{which}:\n  " + "\n  ".join(failed), code=1)
            sys.exit(1)
        result = outcome.get("result")
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    return main


def _one_after_another() -> bool:
    """This sweep's jobs run here, one after another (Hydra's basic launcher) and its sweeper only lists them (not
    Optuna, which would read a failed job's exit code as its objective): a job's bad value can end that job alone."""
    hydra_cfg = HydraConfig.get()
    launcher = str(OmegaConf.select(hydra_cfg, "launcher._target_") or "")
    sweeper = str(OmegaConf.select(hydra_cfg, "sweeper._target_") or "")
    return launcher.endswith("BasicLauncher") and sweeper.endswith("BasicSweeper")


def _did_you_mean(close: list[str], prefix: str) -> str:
    return f"did you mean {' or '.join(prefix + c for c in close)}? " if close else ""


def misspelt_option(config_name: str, args: list[str]) -> str | None:
    """After Hydra refused the command line: for an override of a key the config lacks (``data.windw=8``,
    ``worker=2``), a config that is not in its group (``experiment=bst``) or a group this command does not have
    (``experiment=`` given to the extractor), one line naming the closest existing choices; else None (Hydra's own
    message then says it). Dotted keys are looked up in the config the command line's groups compose (``experiment=``,
    ``data=``...), so a key that one of those configs lacks (``data.source.cache_dir`` with synthetic data) is named too."""
    import difflib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    tool = f"musclevision-{config_name}"
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    plain = [a for a in overrides if not a.startswith(("+", "~", "hydra.")) or a.startswith(("hydra.launcher", "hydra.sweeper"))]
    single = [a for a in overrides if "," not in a.split("=", 1)[1]]  # sweeps: one value is enough
    listed = [a for a in overrides if "," in a.split("=", 1)[1] and not a.split("=", 1)[1].lstrip().startswith("[")]
    if listed and not {"-m", "--multirun"} & set(args):  # several values, no sweep asked for
        return f"{listed[0]} lists several values: add -m to run one job for each ({tool} -m ...)"
    for arg in (a for a in overrides if a.split("=", 1)[0].lstrip("+") == "experiment"):
        for name in arg.split("=", 1)[1].split(","):  # an experiment file without its header: Hydra's words mislead
            path = config_dir() / "experiment" / f"{name.strip()}.yaml"
            if path.is_file() and "@package _global_" not in path.read_text(errors="replace"):
                return _no_header(path)
    try:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            loader = GlobalHydra.instance().config_loader()
            groups = [a for a in single if "." not in a.split("=", 1)[0].lstrip("+~")]  # groups and top-level values
            for arg in plain:
                key, value = arg.split("=", 1)
                if "." in key and (group := key.replace(".", "/")) and value in loader.get_group_options(group):
                    return f"{key}={value} sets a value; to choose the {value} config write {group}={value} (a slash)"
                if "." in key:
                    continue
                try:
                    cfg = compose(config_name, overrides=[a for a in groups if a != arg], return_hydra_config=True)
                except Exception:
                    continue
                choices = loader.get_group_options(key)
                if not choices:  # a top-level value: known, or a misspelling of one
                    if key in cfg.keys():  # (keys(): a required value not given yet, name=???, is known too)
                        continue
                    names = {str(k) for k in cfg if k != "hydra"} | {
                        str(g) for g in cfg.hydra.runtime.choices if "/" not in str(g)
                    }
                    close = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)  # values, and groups (experiment)
                    guess = _did_you_mean(close, "")
                    return f"{key} is not an option of {tool}{'; ' + guess if guess else ' '}(see {tool} --help)"
                if key not in cfg.hydra.runtime.choices:  # a group of another command (experiment= to the extractor)
                    return f"{key}= is not an option of {tool} (see {tool} --help)"
                for one in value.split(","):  # each of a swept list too (-m experiment=best,best_synht)
                    if one in choices:
                        continue
                    guess = _did_you_mean(difflib.get_close_matches(one, choices, n=3, cutoff=0.5), f"{key}=")
                    return f"{key}={one} is not one of the {key} configs; {guess}(they are: {', '.join(choices)})"
            # Dotted keys, in the config of each value of a swept group (-m model=gcn,lstm): one of them may lack it.
            swept = [a.split("=", 1) for a in overrides if "," in a.split("=", 1)[1] and "." not in a.split("=", 1)[0]]
            swept = [(k, v.split(",")) for k, v in swept if loader.get_group_options(k.lstrip("+~"))]
            variants = [groups]
            for key, values in swept:
                variants = [[*v, f"{key}={value}"] for v in variants for value in values][:8]
            for variant in variants:
                try:
                    cfg = compose(config_name, overrides=variant, return_hydra_config=True)
                except Exception:
                    continue
                if hint := _missing_key(cfg, plain):
                    return hint
    except Exception:  # the hint is a courtesy: never hide Hydra's own error behind one of ours
        return None
    finally:
        GlobalHydra.instance().clear()
    return None


def _missing_key(cfg: DictConfig, plain: list[str]) -> str | None:
    """The first dotted override whose key ``cfg`` lacks, said in one line with the closest keys; else None."""
    import difflib

    for arg in plain:
        key = arg.split("=", 1)[0]
        parts = key.split(".")
        if len(parts) < 2:
            continue
        depth = 1  # the first part of the key the config lacks: model. of model.net.mirror_tta where there is no model
        while depth < len(parts) and isinstance(OmegaConf.select(cfg, ".".join(parts[:depth])), DictConfig):
            depth += 1
        parent, leaf = ".".join(parts[: depth - 1]), parts[depth - 1]
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, DictConfig) or leaf in node.keys():
            continue
        if not parent:  # a whole section this command does not have
            close = difflib.get_close_matches(leaf, [str(k) for k in node.keys() if k != "hydra"], n=3, cutoff=0.6)
            guess = _did_you_mean(close, "")
            return f"{key} is not an option: this command has no {leaf} options{'; ' + guess.rstrip() if guess else ''}"
        keys = [str(k) for k in node.keys()]
        guess = _did_you_mean(difflib.get_close_matches(leaf, keys, n=3, cutoff=0.6), f"{parent}.")
        if guess:
            return f"{key} is not an option; {guess.rstrip()}"
        parts = parent.split(".")  # the config that decides this node: the longest group on its path
        groups_on_path = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
        chosen = [(g, cfg.hydra.runtime.choices.get(g)) for g in groups_on_path]
        chosen = [(g, c) for g, c in chosen if isinstance(c, str)]
        where = f" with {chosen[0][0]}={chosen[0][1]}" if chosen else ""
        return f"{key} is not an option{where} (the options of {parent}: {', '.join(keys)})"
    return None


def unknown_recipe_key(config_name: str) -> str | None:
    """A key of the chosen experiment's own file (and of the experiments it builds on) that nothing will read: ``sed:
    7`` or ``model.hiden_size: 32`` in experiments/mine.yaml, which Hydra would add as a new key. A key is unknown when
    the config the same groups compose lacks it and, under a class (``_target_``), that class does not take it either
    (``trainer.gradient_clip_val`` is Lightning's); where no class says, only a near miss of an existing key counts.
    One line naming the key, the file and the closest keys; None when all are known, or when the check cannot run."""
    import difflib

    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    if not choices.get("experiment"):
        return None
    typed = {o.split("=", 1)[0].lstrip("+~"): o for o in hydra_cfg.overrides.task if "=" in o}
    groups = [typed.get(str(g), f"{g}={c}") for g, c in choices.items()
              if c is not None and not str(g).startswith("hydra") and g != "experiment"]  # fmt: skip
    searchpath = [o for o in hydra_cfg.overrides.task if o.startswith("hydra.searchpath")]
    try:  # the same config groups (as typed: +pose=default), none of the experiment's values
        if not GlobalHydra.instance().is_initialized():
            return None
        base = compose(config_name, overrides=[*groups, *searchpath])
    except Exception:  # a hint, never a new way to fail
        return None
    todo, seen = [str(choices["experiment"])], set()
    while todo:
        name = todo.pop()
        path = config_dir() / "experiment" / f"{name}.yaml"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        if "@package _global_" not in path.read_text(errors="replace"):
            return _no_header(path)
        own = OmegaConf.to_container(OmegaConf.load(path)) or {}
        todo += [d for d in own.pop("defaults", None) or [] if isinstance(d, str) and d != "_self_"]  # its parents
        for key in _leaf_keys(own):
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(base, parent) if parent else base
            if not isinstance(node, DictConfig) or leaf in node.keys() or _class_takes(node, leaf):
                continue
            close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=3, cutoff=0.75)
            if "_target_" not in node and not close:
                continue  # no class to ask and no near miss: perhaps read by code that looks the key up
            guess = _did_you_mean(close, f"{parent}." if parent else "").rstrip()
            where = path.resolve()  # experiments/<name>.yaml (configs/experiment links there)
            where = where.relative_to(project_root()) if where.is_relative_to(project_root()) else where
            return f"{key} (in {where}) is not an option{'; ' + guess if guess else ''}"
    return None


def _class_takes(node: DictConfig, key: str) -> bool:
    """Whether the class ``node`` instantiates (its ``_target_``) takes ``key``: a parameter, or any (``**kwargs``,
    a target that cannot be imported here)."""
    import inspect

    from hydra.utils import get_class

    target = node.get("_target_") if "_target_" in node.keys() else None
    if not isinstance(target, str):
        return False
    try:
        params = inspect.signature(get_class(target).__init__).parameters
    except Exception:
        return True
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _no_header(path: Path) -> str:
    return (
        f"experiments/{path.name} lacks its first line '# @package _global_': without it its keys go under "
        "experiment.* and set nothing (every experiment file starts with it)"
    )


def _leaf_keys(node: dict, prefix: str = ""):
    """Dotted paths to every value of a nested dict (a dict value with keys is walked, an empty one is a value)."""
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _wandb_offline() -> bool:
    """Offline unless credentials exist: W&B must never block a run asking for a login."""
    if os.environ.get("WANDB_MODE") in ("online", "offline"):
        return os.environ["WANDB_MODE"] == "offline"
    if os.environ.get("WANDB_API_KEY"):
        return False
    netrc = os.path.expanduser("~/.netrc")
    return not (os.path.isfile(netrc) and "api.wandb.ai" in open(netrc).read())


def _run_name(log_dir: str | None = None) -> str:
    """The run folder relative to the log dir (``paths.log_dir``), e.g. ``train/multiruns/2026-11-25_10-00-00/3`` or
    ``crossval/best/0``; elsewhere (hydra.run.dir=/tmp/x/wb1) its last two parts."""
    out = Path(os.path.normpath(HydraConfig.get().runtime.output_dir))
    base = Path(os.path.normpath(log_dir)) if log_dir else None
    if base is not None and out != base and out.is_relative_to(base):
        return out.relative_to(base).as_posix()
    return "/".join(out.parts[-2:])


def _sweep_group() -> str | None:
    """In a multirun, one group per sweep (named after its folder); None for single runs."""
    hydra_cfg = HydraConfig.get()
    return os.path.basename(os.path.normpath(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None


OmegaConf.register_new_resolver("mv_wandb_offline", _wandb_offline, replace=True)
OmegaConf.register_new_resolver("mv_run_name", _run_name, replace=True)
OmegaConf.register_new_resolver("mv_sweep_group", _sweep_group, replace=True)
