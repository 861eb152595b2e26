"""Turn a ``task(cfg)`` function into a console script running under Hydra with our config tree."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from musclevision.paths import config_dir, project_root

# Output is for people: drop library chatter nobody can act on, keep real warnings and errors.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning internals
warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system.*")  # we launch via submitit


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropAdverts())


_started = False


def mark_task_started() -> None:
    """Called when work begins (the task, or a launcher submitting jobs): later exits are not usage errors."""
    global _started
    _started = True


def report_error(tool: str, exc: BaseException) -> int:
    """Print a task's expected error (bad path, bad value) on stderr, where scripts look for it; exit code 2."""
    print(f"{tool}: error: {exc}", file=sys.stderr)
    return 2


ErrorKinds = tuple[type[BaseException], ...]


def user_mistake(exc: BaseException, kinds: ErrorKinds) -> BaseException | None:
    """The bad path or value behind ``exc`` (Hydra's instantiate wraps what a class raised), else None."""
    if isinstance(exc, InstantiationException):
        exc = exc.__cause__
    return exc if isinstance(exc, kinds) else None


def hydra_entry(config_name: str, task: Callable[[DictConfig], object],
                user_errors: ErrorKinds = (FileNotFoundError, ValueError)) -> Callable[[], None]:  # fmt: skip
    """A ``main()`` for ``[project.scripts]``: runs ``task`` with Hydra, exits with its int result.

    A non-int result (a metric, for sweepers such as Optuna) means success; an error in the
    command line itself exits 2, an error while the task runs exits 1. In a single run, one of
    ``user_errors`` (a bad path or value, which the message names) is one line on stderr and
    exit 2, its traceback kept in the run folder; in a sweep it fails the job as it is.
    """
    tool = f"musclevision-{config_name}"

    def main() -> None:
        # configs/paths resolves every location from this, so commands work from any cwd.
        os.environ.setdefault("MUSCLEVISION_ROOT", str(project_root()))
        os.environ.setdefault("WANDB_SILENT", "true")  # train.py prints the one line that matters (where, how to sync)
        outcome: dict[str, object] = {}

        @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
        def app(cfg: DictConfig):
            mark_task_started()
            try:
                outcome["result"] = task(cfg)
            except MissingMandatoryValue as exc:  # a required option (ckpt_path=???) not given
                outcome["result"] = report_error(tool, f"{exc.full_key}=<value> is required")
            except Exception as exc:
                mistake = user_mistake(exc, user_errors)
                if mistake is None or HydraConfig.get().mode == RunMode.MULTIRUN:
                    raise  # a bug, or a sweep job (the launcher lists it with its log): the traceback helps
                trace = Path(HydraConfig.get().runtime.output_dir) / "error.txt"
                trace.write_text(traceback.format_exc())
                outcome["result"] = report_error(tool, f"{mistake}\n  (traceback in {trace})")
            return outcome["result"]

        try:
            app()
        except SystemExit as exc:
            # Hydra exits 1 for every error; one raised before the task ran is a bad command line
            # (unknown key, malformed override), which our scripts report as usage errors: 2.
            if not _started and exc.code == 1:
                sys.exit(2)
            raise
        result = outcome.get("result")
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    return main


def _wandb_offline() -> bool:
    """Offline unless credentials exist: W&B must never block a run asking for a login."""
    if os.environ.get("WANDB_MODE") in ("online", "offline"):
        return os.environ["WANDB_MODE"] == "offline"
    if os.environ.get("WANDB_API_KEY"):
        return False
    netrc = os.path.expanduser("~/.netrc")
    return not (os.path.isfile(netrc) and "api.wandb.ai" in open(netrc).read())


def _run_name() -> str:
    """The run folder relative to the log dir, e.g. ``train/multiruns/2026-11-25_10-00-00/3``."""
    out = HydraConfig.get().runtime.output_dir
    parts = os.path.normpath(out).split(os.sep)
    return "/".join(parts[-3:] if "runs" in parts[-2:] else parts[-4:])


def _sweep_group() -> str | None:
    """In a multirun, one group per sweep (named after its folder); None for single runs."""
    hydra_cfg = HydraConfig.get()
    return os.path.basename(os.path.normpath(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None


OmegaConf.register_new_resolver("mv_wandb_offline", _wandb_offline, replace=True)
OmegaConf.register_new_resolver("mv_run_name", _run_name, replace=True)
OmegaConf.register_new_resolver("mv_sweep_group", _sweep_group, replace=True)
