"""``musclevision-eval``: window-, clip- and whole-clip metrics of a checkpoint on keypoint data.

    musclevision-eval ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt [split=val|test|all]
    musclevision-eval ckpt_paths=[a.ckpt,b.ckpt]      # an ensemble: the mean of the members' probabilities

An ensemble is scored on held-out groups only when every member held out the same groups (e.g. two
architectures or two seeds trained on one fold); a cross-validation of ensembles, fold by fold:

    musclevision-eval -m data.split.fold=0,1,2,3,4,5 \
      'ckpt_paths=[logs/crossval/best/${data.split.fold}/checkpoints/last.ckpt,logs/crossval/gcn/${data.split.fold}/checkpoints/last.ckpt]'
    musclevision-compare <that sweep folder>

Classes and the window policy (slots, frame rate, slots with a person) come from the checkpoint,
so the data's class list is overridden to match its output order; a class the data lacks is an
error, not a silent zero.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from musclevision.data.sources import source_kind
from musclevision.data.splits import split_key
from musclevision.extract.cache import CacheError
from musclevision.hydra_app import hydra_entry
from musclevision.models.module import ensemble_module, load_checkpoint, window_policy_of
from musclevision.models.report import summary_line, worst_clips, write_report
from musclevision.models.stress import group_metrics, stress_suite

log = logging.getLogger("musclevision.eval")
# Evaluation restores a checkpoint for its weights and epoch only: the callbacks that wrote it do not matter here.
warnings.filterwarnings("ignore", ".*Be aware that when using `ckpt_path`, callbacks used to create the checkpoint.*")


def is_synthetic(source) -> bool:
    """A data source config that generates synthetic keypoints (data=synthetic), not one that reads a video cache."""
    return source_kind(source) == "synthetic"


def own_keypoints(cfg: DictConfig, sources: list[dict]) -> bool:
    """Held-out groups are scored on the keypoints the checkpoint trained on (its ``data.source``: the cache, the pose
    settings it was extracted with), as calibrate and export read them, unless the command line chooses the data
    (``data.source.*``, ``data=``, ``data/source=``, ``paths.*``). Not when its cache is not on this machine (said), nor
    for an ensemble whose members read different keypoints. True when they are what will be scored."""
    chooses_data = ("data.source", "data=", "data/source", "paths.")
    given = [o for o in HydraConfig.get().overrides.task if o.lstrip("+~").startswith(chooses_data)]
    what = [{k: v for k, v in source.items() if k != "workers"} for source in sources]  # which keypoints, not how fast
    if given or not what[0].get("cache_dir") or is_synthetic(what[0]) or is_synthetic(cfg.data.source):
        return False
    if any(w != what[0] for w in what[1:]):
        log.warning("the ensemble's members were trained on different keypoints: scoring data.source as configured")
        return False
    if not Path(str(what[0]["cache_dir"])).is_dir():
        log.warning("the checkpoint's keypoint cache %s is not on this machine: scoring %s (data.source.cache_dir=... "
                    "chooses another)", what[0]["cache_dir"], cfg.data.source.get("cache_dir"))  # fmt: skip
        return False
    current = {k: v for k, v in OmegaConf.to_container(cfg.data.source, resolve=True).items() if k != "workers"}
    if current != what[0]:
        cfg.data.source = {**what[0], "workers": cfg.data.source.get("workers")}
        log.info("the checkpoint's own keypoints: %s (data.source.cache_dir=... scores others)", what[0]["cache_dir"])
    return True


def evaluate(cfg: DictConfig) -> dict:
    if cfg.split not in ("val", "test", "all"):
        raise ValueError(f"split={cfg.split!r}: use val, test or all")
    if bool(cfg.ckpt_path) == bool(cfg.get("ckpt_paths")):
        raise ValueError("give one of ckpt_path=<file.ckpt> or ckpt_paths=[a.ckpt,b.ckpt] (an ensemble)")
    paths = [str(cfg.ckpt_path)] if cfg.ckpt_path else [str(p) for p in cfg.ckpt_paths]  # resolved before data.split changes
    modules = [load_checkpoint(path) for path in paths]
    trained_split = modules[0].run_config.get("data", {}).get("split")
    for module, path in zip(modules[1:], paths[1:]):
        other = module.run_config.get("data", {}).get("split")
        if cfg.split in ("val", "test") and split_key(other) != split_key(trained_split):
            raise ValueError(f"ensemble members were trained on different splits ({paths[0]}: {trained_split}, {path}: "
                             f"{other}): some member has seen the groups it would be scored on; ensemble models of one "
                             "fold, or use split=all on other data")  # fmt: skip
    model = modules[0] if len(modules) == 1 else ensemble_module(modules, paths)
    trained_sources = [m.run_config.get("data", {}).get("source") or {} for m in modules]  # the keypoints each read
    with open_dict(cfg):
        cfg.data.classes = model.classes
        # window, fps, min_detected: the windows it was trained and reported on (not the data config's defaults)
        cfg.data.update({key: value for key, value in window_policy_of(model).items() if value is not None})
        if cfg.split in ("val", "test") and trained_split:
            # "val" means the groups this checkpoint did not train on: its own split (protocol,
            # fold, seed), never the default fold 0, which may be its training data.
            if trained_split.get("protocol") == "none":
                raise ValueError(f"{cfg.ckpt_path} was trained on every group (split protocol none): it has no "
                                 f"held-out {cfg.split} groups; evaluate it with split=all on other data")  # fmt: skip
            cfg.data.split = trained_split
            log.info("split=%s: the checkpoint's own split %s", cfg.split, dict(trained_split))
            own_keypoints(cfg, trained_sources)
            if is_synthetic(trained_sources[0]) and not is_synthetic(cfg.data.source):
                # its held-out groups are synthetic people: scored where they are, not in a video cache
                cfg.data.source = trained_sources[0]
                log.info("the checkpoint was trained on synthetic keypoints (data=synthetic): its %s groups are "
                         "scored there", cfg.split)  # fmt: skip
        if cfg.split == "all":
            if own_keypoints(cfg, trained_sources):
                log.info("split=all scores every clip there, those it trained on too: its held-out groups alone are "
                         "split=val")  # fmt: skip
            cfg.data.split.protocol = "none"  # every clip, whatever its groups: no folds to form
            cfg.data.require_all_classes = False  # other data may hold some of the model's classes only
    datamodule = instantiate(cfg.data)
    if cfg.extract_missing:
        datamodule.prepare_data()
    elif missing := getattr(datamodule.source, "missing", lambda classes: 0)(datamodule.classes):  # synthetic: none
        log.warning("%d videos under data.source.video_root are not in the cache; evaluating the cache as it is "
                    "(extract_missing=true extracts them first)", missing)  # fmt: skip
    datamodule.setup()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_model_summary=False, enable_checkpointing=False)
    # ckpt_path as well: Lightning then restores the checkpoint's epoch too, for the report (not for an ensemble:
    # its members' weights are loaded already).
    trainer.validate(model, dataloaders=datamodule.eval_loaders(cfg.split, cfg.whole_clips),
                     ckpt_path=paths[0] if len(paths) == 1 else None, verbose=False)  # fmt: skip
    evaluation = {**model.last_eval, "stage": cfg.split, "checkpoint": paths[0] if len(paths) == 1 else paths,
                  "split": datamodule.split.description}  # fmt: skip
    evaluation |= group_metrics(evaluation)
    if cfg.stress_suite:
        evaluation["stress"] = stress_suite(model, datamodule, cfg.split, evaluation)
    write_report(evaluation, Path(HydraConfig.get().runtime.output_dir))
    log.info(summary_line(evaluation))
    for line in worst_clips(evaluation):
        log.info("  worst: %s", line)
    log.info("report in %s", HydraConfig.get().runtime.output_dir)
    return evaluation


def run(cfg: DictConfig) -> int:
    evaluate(cfg)
    return 0


main = hydra_entry("eval", run, user_errors=(FileNotFoundError, ValueError, CacheError))

if __name__ == "__main__":
    main()
