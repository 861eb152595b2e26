"""``musclevision-train``: instantiate data, model, callbacks, loggers and trainer from Hydra; fit; report.

    musclevision-train experiment=best
    musclevision-train experiment=paper data.split.fold=2
    musclevision-train data=synthetic debug=fast_dev_run

The run folder gets checkpoints/, val_metrics.json, confusion and per-class PNGs, csv/ and
wandb/. The return value (the optimized metric) is what Hydra sweepers such as Optuna read.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import types
import typing
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from musclevision.data.splits import check_split_options
from musclevision.extract.cache import CacheError
from musclevision.hydra_app import hydra_entry, unknown_recipe_key
from musclevision.models.metrics import report_value
from musclevision.models.module import check_resumable, load_weights
from musclevision.models.report import summary_line, write_report
from musclevision.models.stress import group_metrics, stress_suite

log = logging.getLogger("musclevision.train")
# Lightning's advice to add DataLoader workers does not apply: batches are gathered vectorized.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# a small dataset (one's own few clips) has fewer batches than trainer.log_every_n_steps: the epoch's means are logged anyway
warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every non-null ``_target_`` entry of a config group (callbacks, loggers)."""
    return [instantiate(entry) for entry in (group or {}).values() if entry is not None and "_target_" in entry]


TAG_LENGTH = 64  # W&B refuses longer tags (and with them the whole run)


def short_tag(tag: str) -> str:
    """``tag`` within TAG_LENGTH characters: an override keeps its key and the end of its value (a cache path's last
    folder tells more than its root), e.g. ``data.source.cache_dir=…/ucf101_exercise_clips_full``."""
    tag = str(tag)
    if len(tag) <= TAG_LENGTH:
        return tag
    key, sep, value = tag.partition("=")
    room = TAG_LENGTH - len(key) - len(sep) - 1
    return f"{key}{sep}…{value[-room:]}" if sep and room >= 8 else "…" + tag[-(TAG_LENGTH - 1) :]


def sweep_tags(cfg: DictConfig) -> list[str]:
    """Tags for the experiment tracker: the configured ones plus, in a sweep, this job's overrides (each at most
    TAG_LENGTH characters)."""
    tags = list(cfg.get("tags") or [])
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        tags += [o for o in hydra_cfg.overrides.task if not o.startswith("hydra/")]
    return [short_tag(t) for t in tags]


def check_config(cfg: DictConfig, files: bool = True) -> None:
    """Refuse, before any work, combinations that would otherwise fail only after training. ``files``: also that the
    checkpoints named exist (not before a cluster runs the job: they may be on its nodes only)."""
    if unknown := unknown_recipe_key("train"):  # a misspelt key in an experiment file: nothing would read it
        raise ValueError(unknown)
    for group in HydraConfig.get().runtime.choices:  # model.optimizer=sgd: a value where a config belongs
        node = OmegaConf.select(cfg, str(group).replace("/", "."))
        if not str(group).startswith("hydra") and isinstance(node, str):
            raise ValueError(f"{str(group).replace('/', '.')}={node} sets a value where a config belongs: choose one "
                             f"with {group}=<name> (a slash; see musclevision-train --help)")  # fmt: skip
    if files and cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
    if files and cfg.get("init_ckpt") and not Path(cfg.init_ckpt).is_file():
        raise FileNotFoundError(f"init_ckpt={cfg.init_ckpt} does not exist")
    if cfg.get("init_ckpt") and cfg.get("ckpt_path"):
        raise ValueError("init_ckpt starts a new run from pre-trained weights, ckpt_path resumes a run: give one of them")
    if not cfg.get("train", True) and not cfg.get("ckpt_path"):
        raise ValueError("train=false evaluates a checkpoint: give it with ckpt_path=<file.ckpt>")
    protocol = OmegaConf.select(cfg, "data.split.protocol")
    split = OmegaConf.select(cfg, "data.split")
    if split is not None:  # a wrong fold or protocol is named now, not after extracting the clips
        check_split_options(OmegaConf.to_container(split, resolve=True))
    if cfg.get("test") and protocol != "official":
        raise ValueError(f"test=true needs held-out test groups: data.split.protocol=official, not {protocol!r}")
    if protocol == "none" and (cfg.get("eval_ckpt", "last") != "none" or OmegaConf.select(cfg, "callbacks.model_checkpoint")):
        raise ValueError("data.split.protocol=none trains on every group, so there is no validation to report or monitor: "
                         "add eval_ckpt=none callbacks.model_checkpoint=null (as experiment=best_deploy does)")  # fmt: skip
    check_trainer_options(cfg.get("trainer") or {})
    seed = cfg.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed={seed!r} must be a whole number")
    if cfg.get("model") is not None:
        check_model_options(OmegaConf.to_container(cfg.model, resolve=True))


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


def check_trainer_options(trainer_cfg) -> None:
    """A value of the wrong type (trainer.max_epochs=abc) named now, checked against the types pl.Trainer
    declares, instead of a bare AssertionError from deep inside Lightning after the data is loaded."""
    hints = typing.get_type_hints(pl.Trainer.__init__)
    for key, value in trainer_cfg.items():
        hint = hints.get(key)
        options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        literals = [v for o in options if typing.get_origin(o) is typing.Literal for v in typing.get_args(o)]
        kinds = [o for o in options if o in _KINDS]
        if len(kinds) + sum(typing.get_origin(o) is typing.Literal for o in options) < len(options):
            continue  # it also takes objects (a profiler, a timedelta, a list of devices): Lightning checks those
        fits = any(_fits(value, kind) for kind in kinds) or (value in literals and not isinstance(value, bool))
        if not fits:
            allowed = [_KINDS[k] for k in kinds if not (k is int and float in kinds)]
            allowed += [f"one of {', '.join(dict.fromkeys(map(str, literals)))}"] if literals else []
            raise ValueError(f"trainer.{key}={value!r} must be {' or '.join(allowed)}")


def check_model_options(model: dict) -> None:
    """A model value of the wrong kind (model.hidden_size=abc, model.optimizer.lr=abc) or one the optimizer refuses
    (model.optimizer.lr=-1) named now: the network is built before the data is loaded, but the optimizer only when
    training starts, after the keypoints are extracted. Kinds come from the classes the values go to (``_kind``)."""
    from musclevision.models.classifier import ARCHITECTURES
    from musclevision.models.module import ExerciseModule

    net = model.get("net") or {}
    _check_kinds("model", ExerciseModule, model)
    if net.get("arch", "lstm") in ARCHITECTURES:  # (an unknown one is named when the network is built)
        features, backbone, _ = ARCHITECTURES[net.get("arch", "lstm")]
        _check_kinds("model.net", backbone, net)
        _check_kinds("model.net.features", features, net.get("features") or {})
    weights = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = None
    for key in ("optimizer", "scheduler"):
        part = model.get(key)
        if not isinstance(part, dict) or "_target_" not in part:
            continue
        target = part["_target_"]
        if part.get("_partial_") is not True:
            raise ValueError(f"model.{key} needs _partial_: true ({target} is built when training starts, with the "
                             f"{'model parameters' if key == 'optimizer' else 'optimizer'})")  # fmt: skip
        try:
            cls = get_class(target)
        except Exception as exc:  # a misspelt _target_, or one that is not a class
            cause = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), type(exc).__name__)
            raise ValueError(f"model.{key}._target_={target!r} is not a class that can be imported ({cause}); check "
                             "its module and class name") from None  # fmt: skip
        _check_kinds(f"model.{key}", cls, part)
        try:
            built = instantiate(part)
            built = built(params=weights) if key == "optimizer" else built(optimizer=optimizer) if optimizer else None
        except InstantiationException as exc:
            raise ValueError(f"model.{key}: {exc.__cause__ or exc} ({target} refused it)") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"model.{key}: {exc} ({target} refused it)") from None
        if key == "optimizer":
            optimizer = built


def _check_kinds(prefix: str, target, values: dict) -> None:
    """Each of ``values`` whose parameter of ``target`` takes a number or true/false must be of that kind."""
    params = inspect.signature(target.__init__).parameters
    for key, value in values.items():
        param = params.get(key)
        kind = _kind(param) if param is not None else None
        if kind is None or _fits(value, kind):
            continue
        annotation = str(param.annotation)
        if value is None and (param.default is None or "None" in annotation or "Optional" in annotation):
            continue
        raise ValueError(f"{prefix}.{key}={value!r} must be {_KINDS[kind]}")


def _kind(param: inspect.Parameter) -> type | None:
    """bool, int or float from the parameter's annotation (``hidden_size: int``, ``lr: float | Tensor``), else from its
    default: true/false, or a number (``weight_decay=0`` of an unannotated optimizer may well be 1e-4)."""
    if param.annotation is not inspect.Parameter.empty:
        annotation = param.annotation if isinstance(param.annotation, str) else str(param.annotation)
        if re.search(r"\b(tuple|list|Tuple|List|Sequence|Iterable)\b", annotation):
            return None  # betas=(0.9, 0.999), min_lr=[...]: the class checks those itself
        names = set(re.findall(r"\b(bool|int|float)\b", annotation.replace("<class '", "").replace("'>", "")))
        if names == {"bool"}:
            return bool
        if names == {"int"}:
            return int
        if "float" in names:
            return float
    default = param.default
    if isinstance(default, bool):
        return bool
    return float if isinstance(default, (int, float)) else None


def _fits(value, kind) -> bool:
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    return isinstance(value, (int, float) if kind is float else kind)


def resume_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """An explicit ckpt_path, else this run folder's last.ckpt (a requeued SLURM job continues)."""
    if cfg.get("ckpt_path"):
        return str(cfg.ckpt_path)
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def report_checkpoint(trainer: pl.Trainer, which: str, output_dir: Path, cfg: DictConfig) -> str | None:
    """The checkpoint the final report evaluates: the run's last.ckpt, or the best by the optimized metric
    (with train=false: the given ckpt_path)."""
    if not cfg.get("train", True):
        return str(cfg.ckpt_path)
    if which == "best":
        best = [cb.best_model_path for cb in trainer.checkpoint_callbacks if cb.monitor and cb.best_model_path]
        if best:
            return best[0]
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None  # None: the weights in memory (= last epoch)


def log_to_trackers(loggers: list, cfg: DictConfig, files: dict, evaluation: dict) -> None:
    for logger in loggers:
        if isinstance(logger, pl.loggers.WandbLogger):
            logger.experiment.config.update(OmegaConf.to_container(cfg, resolve=True), allow_val_change=True)
            for name, path in files.items():
                if path.suffix == ".png":
                    logger.log_image(key=f"{evaluation['stage']}/{name}", images=[str(path)])
            for level in ("window", "clip", "wholeclip"):
                if level in evaluation:
                    logger.experiment.summary[f"final/{level}_acc"] = evaluation[level]["acc"]
                    logger.experiment.summary[f"final/{level}_bacc"] = evaluation[level]["bacc"]
            if evaluation.get("checkpoint"):
                # Logged by hand: WandbLogger(log_model=True) refuses offline mode, artifacts do not.
                import wandb

                artifact = wandb.Artifact(f"model-{logger.experiment.id}", type="model", metadata=evaluation.get("window"))
                # staged (copied) so that an offline run syncs later even if the checkpoint moves; not cached as well
                artifact.add_file(str(Path(evaluation["checkpoint"]).resolve()), skip_cache=True)
                logger.experiment.log_artifact(artifact, aliases=["reported", "latest"])


def free_threads(asked: int) -> int:
    """``asked`` intra-op threads, fewer when other work keeps cores busy (the 1-minute load average): a second
    thread speeds the paper's recipe up by 10 % on an idle 2-core machine, but a thread that has to share a core
    with another job makes every step wait for it (18x slower measured beside another training)."""
    machine = os.cpu_count() or 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine
    # the machine's load, in this process's share of it (a SLURM job's 8 cores of a 64-core node see an eighth of it)
    load = (os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0) * cores / max(machine, cores)
    free = max(1, cores - round(load))
    if asked > free:
        log.info("torch_threads=%d lowered to %d: %d cores, load %.1f", asked, free, cores, load)
    return max(1, min(asked, free))


def train(cfg: DictConfig) -> dict:
    """Fit and evaluate one configuration; returns the final evaluation (metrics by level)."""
    check_config(cfg)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the run's .hydra/config.yaml
    if cfg.get("torch_threads"):
        torch.set_num_threads(free_threads(int(cfg.torch_threads)))
    with open_dict(cfg):
        cfg.tags = sweep_tags(cfg)

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    if cfg.get("ckpt_path"):
        check_resumable(cfg.ckpt_path, model)
    if cfg.get("init_ckpt"):
        load_weights(model, cfg.init_ckpt)
        log.info("network weights from %s (init_ckpt)", cfg.init_ckpt)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not loggers:  # Lightning refuses a learning-rate monitor with nothing to log to
        callbacks = [cb for cb in callbacks if not isinstance(cb, pl.callbacks.LearningRateMonitor)]
    try:
        trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as exc:  # Lightning refusing a trainer value (trainer.max_epochs=-5) is a bad option
        if isinstance(exc.__cause__, MisconfigurationException):
            raise ValueError(f"trainer: {exc.__cause__}") from exc
        raise
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    params = sum(p.numel() for p in model.parameters())
    log.info("model %s with %s parameters, classes %s", cfg.model.net.arch, f"{params:,}", model.classes)

    finished = False  # the W&B upload hint is for a run with something in it
    try:
        if cfg.get("train", True):
            try:
                trainer.fit(model, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg, output_dir))
            except SystemExit as exc:  # Lightning's answer to Ctrl-C
                # Interactive runs only: a sweep job killed by SLURM must end as it always did (CANCELLED).
                ctrl_c = isinstance(exc.__context__, KeyboardInterrupt) and HydraConfig.get().mode == RunMode.RUN
                if ctrl_c and trainer.interrupted:
                    last = output_dir / "checkpoints" / "last.ckpt"
                    log.warning("interrupted; %s", f"resume with ckpt_path={last}" if last.is_file() else "no epoch finished yet")
                    raise SystemExit(130) from None
                raise
        evaluation: dict = {}
        if cfg.get("eval_ckpt", "last") in ("last", "best") and not trainer.fast_dev_run:
            ckpt = report_checkpoint(trainer, cfg.eval_ckpt, output_dir, cfg)
            trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
            evaluation = {**model.last_eval, "checkpoint": ckpt, "split": datamodule.split.description}
            evaluation |= group_metrics(evaluation)
            if cfg.get("stress_suite"):
                evaluation["stress"] = stress_suite(model, datamodule, "val", evaluation)
            files = write_report(evaluation, output_dir, extra={"parameters": params, "torch_threads": torch.get_num_threads()})
            log_to_trackers(loggers, cfg, files, evaluation)
            log.info(summary_line(evaluation))
            log.info("report and checkpoints in %s", output_dir)
        if cfg.get("test"):
            trainer.test(model, datamodule=datamodule, ckpt_path=evaluation.get("checkpoint"), verbose=False)
            test_eval = {**model.last_eval, "split": datamodule.split.description}
            test_eval |= group_metrics(test_eval)
            write_report(test_eval, output_dir)
            log.info(summary_line(test_eval))
        finished = True
        return evaluation
    finally:
        for logger in loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                import wandb

                run_id, run_dir = logger.experiment.id, Path(logger.experiment.dir).parent
                wandb.finish()  # several runs in one process (multirun) must not share a W&B run
                if finished or trainer.current_epoch > 0:  # a run with epochs to look at (done, or interrupted)
                    log.info("W&B run %s in %s%s", run_id, run_dir,
                             f"; upload it with: wandb sync {run_dir}" if logger.offline else "")  # fmt: skip


def run(cfg: DictConfig):
    """The task Hydra runs; its return value (the optimized metric) is what sweepers such as Optuna read."""
    evaluation = train(cfg)
    return report_value(evaluation, cfg.optimized_metric) if cfg.get("optimized_metric") and evaluation else None


def precheck(cfg: DictConfig) -> None:
    """One sweep job's values, checked before a cluster queues it: check_config (but for files, which may be on the
    cluster's nodes only), and what the data module and the model refuse when they are built (about 0.1 s a job on
    one core: nothing is read, extracted or trained)."""
    check_config(cfg, files=False)
    instantiate(cfg.data)
    instantiate(cfg.model)


main = hydra_entry("train", run, user_errors=(FileNotFoundError, ValueError, CacheError), precheck=precheck)

if __name__ == "__main__":
    main()
