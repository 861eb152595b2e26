"""Checkpoint -> ``exports/<name>.onnx`` + ``exports/<name>.json`` (the model card), parity-checked.

Nothing is written unless the ONNX graph passes the checker and matches PyTorch on real
windows (and edge cases) within the tolerance; both files then appear together.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from musclevision.export.onnx_model import OPSET, check_parity, export_onnx, input_names, temporary_path
from musclevision.extract.landmarker import PoseSettings
from musclevision.extract.pose_bundle import bundle_path
from musclevision.models.module import ExerciseModule

log = logging.getLogger(__name__)
CARD_FORMAT = "musclevision-model-card/1"
INPUT_LAYOUTS = {
    "landmarks": ([33, 4], "PoseLandmarker image landmarks per frame: x, y normalized to width/height, z, visibility"),
    "world": ([33, 3], "PoseLandmarker world landmarks per frame: x, y, z in metres, hip-centred"),
}


def pose_model_info(run_config: dict) -> dict:
    """The pose model the training keypoints came from (the page must use the same bundle)."""
    source = run_config.get("data", {}).get("source", {})
    pose = source.get("pose") or {"model": "full"}
    settings = PoseSettings.resolve(**pose)
    info = {"variant": settings.model, "bundle": bundle_path(settings.model).name,
            "bundle_sha256": settings.bundle_sha256, **settings.cache_key()}  # fmt: skip
    if "Synthetic" in str(source.get("_target_", "")):
        info["note"] = "trained on synthetic BlazePose-format sequences; default bundle assumed"
    return {k: v for k, v in info.items() if k != "model"}


def run_metrics(ckpt_path: Path, metrics_file: str | None) -> dict:
    """Metrics for the card: an explicit file (e.g. cross-validation), else the run's val report."""
    if metrics_file:
        path = Path(metrics_file)
        if not path.is_file():
            raise FileNotFoundError(f"metrics_file={metrics_file} does not exist")
    else:
        path = ckpt_path.parent.parent / "val_metrics.json"
        if not path.is_file():
            return {}
    data = json.loads(path.read_text())
    measured = data.get("checkpoint")
    if not metrics_file and measured and Path(measured).name != ckpt_path.name:
        return {}  # the run's report measured another checkpoint (e.g. last.ckpt, not best_epoch_*): not this model's numbers
    return {"source": str(path), **{k: v for k, v in data.items() if k not in ("confusion",)}}


def build_card(name: str, model: ExerciseModule, onnx_name: str, fps: float, threshold: float, parity: dict,
               metrics: dict, ckpt_path: Path) -> dict:  # fmt: skip
    config = model.run_config
    names = input_names(model.net)
    return {
        "format": CARD_FORMAT,
        "name": name,
        "onnx": onnx_name,
        "classes": model.classes,
        "window": int(model.hparams.window),
        "fps": fps,
        "inputs": [{"name": n, "shape": ["batch", "time", *INPUT_LAYOUTS[n][0]], "dtype": "float32", "missing": "nan",
                    "layout": INPUT_LAYOUTS[n][1]} for n in names],  # fmt: skip
        "outputs": [{"name": "probabilities", "shape": ["batch", len(model.classes)], "dtype": "float32"}],
        "opset": OPSET,
        "pose_model": pose_model_info(config),
        "no_exercise_threshold": threshold,
        "training": {
            "checkpoint": str(ckpt_path),
            "net": model.hparams.net,
            "tags": config.get("tags"),
            "data": {k: config.get("data", {}).get(k) for k in ("classes", "sampling", "window", "split", "augment")},
            "source": config.get("data", {}).get("source"),
            "epochs": config.get("trainer", {}).get("max_epochs"),
            "seed": config.get("seed"),
        },
        "metrics": metrics,
        "parity": parity,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def export_checkpoint(ckpt_path: str | Path, name: str, out_dir: str | Path, landmarks: np.ndarray, world: np.ndarray,
                      fps: float, threshold: float = 0.6, tolerance: float = 1e-5,
                      metrics_file: str | None = None) -> tuple[Path, Path]:  # fmt: skip
    """Export ``ckpt_path``; ``landmarks``/``world`` are real windows for the parity check."""
    ckpt_path, out_dir = Path(ckpt_path), Path(out_dir)
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name={name!r} must be a plain file name, e.g. name=best")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"no_exercise_threshold={threshold!r} must be between 0 and 1")
    model = ExerciseModule.load_from_checkpoint(ckpt_path, map_location="cpu").eval()
    window = int(model.hparams.window)
    tmp_onnx, tmp_card = temporary_path(out_dir, ".onnx.tmp"), temporary_path(out_dir, ".json.tmp")
    try:
        export_onnx(model.net, tmp_onnx, window)
        parity = check_parity(model.net, tmp_onnx, landmarks, world, window, tolerance)
        card = build_card(name, model, f"{name}.onnx", fps, threshold, parity, run_metrics(ckpt_path, metrics_file), ckpt_path)
        tmp_card.write_text(json.dumps(card, indent=2) + "\n")
        onnx_path, card_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
        os.replace(tmp_onnx, onnx_path)
        os.replace(tmp_card, card_path)
    finally:
        for tmp in (tmp_onnx, tmp_card):
            tmp.unlink(missing_ok=True)
    worst = max(r["max_abs_diff"] for r in parity.values())
    log.info("exported %s (+ %s): ONNX vs PyTorch max abs diff %.1e over %d real windows", onnx_path, card_path.name,
             worst, len(landmarks))  # fmt: skip
    return onnx_path, card_path
