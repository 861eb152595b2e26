"""``musclevision-export``: Hydra front-end of :func:`export_checkpoint`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from musclevision.export.exporter import check_name, export_checkpoint
from musclevision.hydra_app import hydra_entry
from musclevision.models.module import ExerciseModule, load_checkpoint
from musclevision.oserrors import check_writable, describe_write_error, is_full_or_read_only
from musclevision.paths import default_export
from musclevision.sweep.compare import fold_groups, is_run, read_runs, swept_keys

log = logging.getLogger("musclevision.export")
METRIC = "val/window_bacc"  # how the best configuration of a sweep is chosen (musclevision-compare's default)


def sweep_checkpoints(sweep_dir: Path, ensemble: bool) -> list[Path]:
    """The best run musclevision-compare recorded (best.json), or with ``ensemble`` every fold's checkpoint of the
    sweep's best configuration (a cross-validation: the six fold models, say)."""
    if is_run(sweep_dir):
        raise ValueError(f"sweep_dir={sweep_dir} is one run's folder, not a multirun's: export it with "
                         f"ckpt_path={sweep_dir / 'checkpoints' / 'last.ckpt'}")  # fmt: skip
    if not ensemble:
        best = sweep_dir / "best.json"
        if not best.is_file():
            raise FileNotFoundError(f"{best} not found: run `musclevision-compare {sweep_dir}` first")
        return [Path(json.loads(best.read_text())["checkpoint"])]
    runs = read_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"sweep_dir={sweep_dir} holds no runs (expected <sweep>/<n>/.hydra/)")
    unfinished = [r.folder.name for r in runs if r.checkpoint is None or r.value(METRIC) is None]
    if unfinished:
        raise ValueError(f"sweep_dir={sweep_dir}: runs {', '.join(unfinished)} have no report or checkpoint (failed or "
                         "running); an ensemble of the folds needs every fold")  # fmt: skip
    groups = fold_groups(runs, swept_keys(runs), METRIC)
    label, members = groups[0]
    if len(groups) > 1:
        log.info("sweep_dir=%s has %d configurations: ensembling the folds of the best by %s, %s", sweep_dir, len(groups),
                 METRIC, label)  # fmt: skip
    return [r.checkpoint for r in members]


def resolve_checkpoints(cfg: DictConfig) -> list[Path]:
    """ckpt_path, ckpt_paths and sweep_dir together: one checkpoint exports one model, several an ensemble."""
    paths = [Path(cfg.ckpt_path)] if cfg.ckpt_path else []
    paths += [Path(p) for p in cfg.get("ckpt_paths") or []]
    if cfg.sweep_dir:
        paths += sweep_checkpoints(Path(cfg.sweep_dir), bool(cfg.get("ensemble")))
    elif cfg.get("ensemble"):
        raise ValueError("ensemble=true ensembles the folds of a sweep: give sweep_dir=<multirun folder>")
    if not paths:
        raise ValueError("give ckpt_path=<file.ckpt>, ckpt_paths=[a.ckpt,b.ckpt] (an ensemble) or sweep_dir=<multirun folder>")
    if len(set(paths)) < len(paths):
        raise ValueError(f"a checkpoint is listed twice: {[str(p) for p in paths]}")
    return paths


def parity_windows(cfg: DictConfig, model: ExerciseModule, count: int):
    """Random real windows (landmarks, world) and the median frame rate of the data."""
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else model.run_config.get("data")
    if not data_cfg:
        raise ValueError("the checkpoint records no training data; choose parity data with data=ucf101 or data=synthetic")
    data_cfg.update(classes=model.classes, window=int(model.hparams.window))
    datamodule = instantiate(data_cfg)
    datamodule.setup()
    windows = datamodule.eval_loaders("all")[0].dataset
    torch.manual_seed(cfg.seed)
    picked = np.random.default_rng(cfg.seed).choice(len(windows), size=min(count, len(windows)), replace=False)
    batch = windows[np.sort(picked)]
    fps = float(np.median([clip.fps for clip in datamodule.clips]))
    return batch["landmarks"].numpy(), batch["world"].numpy(), fps


def run(cfg: DictConfig) -> int:
    name = cfg.name  # name=??? is refused here, before the checkpoints and the parity data are loaded
    check_name(name)  # and so is a name no file (or card) can have
    ckpts = resolve_checkpoints(cfg)
    models = [load_checkpoint(ckpt) for ckpt in ckpts]
    try:  # and a folder it cannot write, before the parity data and the export (named as out_dir, not as the temporary
        check_writable(cfg.out_dir)  # file the write would have failed on)
    except OSError as exc:
        if is_full_or_read_only(exc):  # the disk's condition, not the command's: exit 1, as hydra_entry says
            raise OSError(exc.errno, exc.strerror, str(cfg.out_dir)) from None
        raise ValueError(f"out_dir={cfg.out_dir}: {describe_write_error(exc, cfg.out_dir)}") from None
    landmarks, world, fps = parity_windows(cfg, models[0], cfg.parity_windows)
    calibration = None
    if cfg.calibration:
        path = Path(cfg.calibration)
        if not path.is_file():
            raise FileNotFoundError(f"calibration={cfg.calibration} does not exist: make it with musclevision-calibrate")
        calibration = json.loads(path.read_text())
    earlier = previous_card(Path(cfg.out_dir) / f"{name}.json")  # a model of that name already there: said below
    onnx_path, card_path = export_checkpoint(
        models, ckpts, name, cfg.out_dir, landmarks, world, fps, threshold=cfg.no_exercise_threshold,
        tolerance=cfg.tolerance, metrics_file=cfg.metrics_file, smoothing_s=cfg.smoothing_s, calibration=calibration,
        calibration_source=str(cfg.calibration),
    )  # fmt: skip
    print(f"{onnx_path}\n{card_path}\nserve it: musclevision-serve --export {card_path}")
    if Path(card_path).resolve() == default_export().resolve():
        print(f"note: this replaced the default model ({card_path}) that musclevision-serve and -replay use; "
              "`git checkout exports/best.onnx exports/best.json` brings the shipped one back, `make default-model` "
              "retrains it", file=sys.stderr)  # fmt: skip
    elif earlier is not None:
        print(f"note: this replaced {card_path}, an earlier model of that name ({earlier}); give another name=... to "
              "keep both", file=sys.stderr)  # fmt: skip
    return 0


def previous_card(path: Path) -> str | None:
    """What the card at ``path`` describes (its classes, when it was made), None when there is none."""
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
        return f"classes {', '.join(card['classes'])}, made {card.get('created') or 'at an unknown time'}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a card that cannot be read"


# RuntimeError: a failed ONNX check or parity test, reported as what it is rather than as a crash
main = hydra_entry("export", run, user_errors=(FileNotFoundError, ValueError, RuntimeError))

if __name__ == "__main__":
    main()
