"""``musclevision-export``: Hydra front-end of :func:`export_checkpoint`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from musclevision.export.exporter import export_checkpoint
from musclevision.hydra_app import hydra_entry
from musclevision.models.module import ExerciseModule, load_checkpoint


def resolve_checkpoint(cfg: DictConfig) -> Path:
    if bool(cfg.ckpt_path) == bool(cfg.sweep_dir):
        raise ValueError("give exactly one of ckpt_path=<file.ckpt> or sweep_dir=<multirun folder>")
    if cfg.sweep_dir:
        best = Path(cfg.sweep_dir) / "best.json"
        if not best.is_file():
            raise FileNotFoundError(f"{best} not found: run `musclevision-compare {cfg.sweep_dir}` first")
        return Path(json.loads(best.read_text())["checkpoint"])
    return Path(cfg.ckpt_path)


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
    ckpt = resolve_checkpoint(cfg)
    model = load_checkpoint(ckpt)
    landmarks, world, fps = parity_windows(cfg, model, cfg.parity_windows)
    calibration = None
    if cfg.calibration:
        path = Path(cfg.calibration)
        if not path.is_file():
            raise FileNotFoundError(f"calibration={cfg.calibration} does not exist: make it with musclevision-calibrate")
        calibration = json.loads(path.read_text())
    onnx_path, card_path = export_checkpoint(
        model, ckpt, cfg.name, cfg.out_dir, landmarks, world, fps, threshold=cfg.no_exercise_threshold,
        tolerance=cfg.tolerance, metrics_file=cfg.metrics_file, smoothing_s=cfg.smoothing_s, calibration=calibration,
        calibration_source=str(cfg.calibration),
    )  # fmt: skip
    print(f"{onnx_path}\n{card_path}\nserve it: musclevision-serve --export {card_path}")
    return 0


# RuntimeError: a failed ONNX check or parity test, reported as what it is rather than as a crash
main = hydra_entry("export", run, user_errors=(FileNotFoundError, ValueError, RuntimeError))

if __name__ == "__main__":
    main()
