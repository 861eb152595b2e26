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
from hydra.utils import get_class

from musclevision.card import (
    CARD_FORMAT,
    SYNTHETIC_WARNING,
    Calibration,
    ModelCard,
    PoseModel,
    TensorSpec,
    Training,
    WindowPolicy,
)
from musclevision.export.onnx_model import OPSET, check_parity, export_onnx, input_names, temporary_path
from musclevision.extract.landmarker import PoseSettings
from musclevision.extract.pose_bundle import bundle_path
from musclevision.models.module import ExerciseModule
from musclevision.paths import project_root
from musclevision.pose.skeleton import NUM_LANDMARKS

log = logging.getLogger(__name__)
INPUT_LAYOUTS = {
    "landmarks": ([NUM_LANDMARKS, 4], "PoseLandmarker image landmarks per frame: x, y normalized to width/height, z, visibility"),
    "world": ([NUM_LANDMARKS, 3], "PoseLandmarker world landmarks per frame: x, y, z in metres, hip-centred"),
}


def portable(value):
    """``value`` with every absolute path made relative to the project (or None outside it): cards travel."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        path, root = Path(value).resolve(), project_root()
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else None
    return value


def data_kind(run_config: dict) -> str:
    """What the model learned from, as its data source declares it ("real" or "synthetic")."""
    target = run_config.get("data", {}).get("source", {}).get("_target_")
    return getattr(get_class(target), "kind", "real") if target else "real"


def pose_model_info(run_config: dict) -> dict:
    """The pose model the training keypoints came from (the page must use the same bundle)."""
    pose = run_config.get("data", {}).get("source", {}).get("pose") or {}
    settings = PoseSettings.resolve(**pose)
    info = {"variant": settings.model, "bundle": bundle_path(settings.model).name, **settings.cache_key()}
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
    return {"source": str(path.resolve()), **{k: v for k, v in data.items() if k not in ("confusion",)}}


def build_card(name: str, model: ExerciseModule, onnx_name: str, policy: WindowPolicy, parity: dict, metrics: dict,
               ckpt_path: Path, calibration: Calibration | None = None) -> ModelCard:  # fmt: skip
    config = model.run_config
    names = input_names(model.net)
    kind = data_kind(config)
    return ModelCard(
        format=CARD_FORMAT,
        name=name,
        onnx=onnx_name,
        classes=model.classes,
        inputs=[
            TensorSpec(
                name=n, shape=["batch", "time", *INPUT_LAYOUTS[n][0]], dtype="float32", missing="nan", layout=INPUT_LAYOUTS[n][1]
            )
            for n in names
        ],  # fmt: skip
        outputs=[TensorSpec(name="probabilities", shape=["batch", len(model.classes)], dtype="float32")],
        opset=OPSET,
        window_policy=policy,
        pose_model=PoseModel(**pose_model_info(config)),
        calibration=calibration,
        training=Training(
            data_kind=kind,
            warning=SYNTHETIC_WARNING if kind == "synthetic" else None,
            checkpoint=portable(str(ckpt_path.resolve())),
            net=model.hparams.net,
            tags=config.get("tags"),
            data=portable(
                {k: config.get("data", {}).get(k) for k in ("classes", "sampling", "window", "min_detected", "split", "augment")}
            ),
            source=portable(config.get("data", {}).get("source")),
            epochs=config.get("trainer", {}).get("max_epochs"),
            seed=config.get("seed"),
        ),
        metrics=portable(metrics),
        parity=parity,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def window_policy(model: ExerciseModule, fps: float, threshold: float, smoothing_s: float) -> WindowPolicy:
    """The policy the model was trained and evaluated under (window, frames with a person), plus the page's display
    settings (smoothing, threshold)."""
    window, data = int(model.hparams.window), model.run_config.get("data", {})
    min_detected = int(data.get("min_detected", 1))
    fps = data.get("fps", fps)  # the rate the model was trained at (older checkpoints: their clips' rate)
    return WindowPolicy(fps=float(fps), window=window, min_detected=min(min_detected, window), smoothing_s=float(smoothing_s),
                        threshold=float(threshold))  # fmt: skip


def calibration_for(model: ExerciseModule, calibration: dict, source: str) -> tuple[Calibration, float]:
    """The card's calibration block and the threshold for this checkpoint, from a musclevision-calibrate result:
    a fold checkpoint of the calibrated recipe gets the temperature fitted without its own fold (its held-out
    numbers stay honest); any other model (the final one, trained on every group) the pooled temperature."""
    if calibration.get("format") != "musclevision-calibration/1":
        raise ValueError(f"calibration={source} is not a musclevision-calibrate result")
    split = model.run_config.get("data", {}).get("split") or {}
    same_recipe = all(split.get(k) == v for k, v in calibration.get("split", {}).items())
    fold = str(split.get("fold")) if split.get("protocol") not in (None, "none") else None
    own = same_recipe and fold in calibration.get("fold_temperatures", {})
    temperature = calibration["fold_temperatures"][fold] if own else calibration["temperature"]
    folds = len(calibration.get("checkpoints", []))
    measured = (f"{calibration['windows']} held-out windows of the {folds} cross-validation folds"
                + (f", fold {fold}'s temperature fitted on the other folds" if own else ""))  # fmt: skip
    block = Calibration(temperature=float(temperature), ece_before=round(float(calibration["ece_before"]), 4),
                        ece_after=round(float(calibration["ece_after"]), 4), measured_on=measured)  # fmt: skip
    return block, float(calibration["threshold"])


def export_checkpoint(model: ExerciseModule, ckpt_path: str | Path, name: str, out_dir: str | Path, landmarks: np.ndarray,
                      world: np.ndarray, fps: float, threshold: float | None = None, tolerance: float = 1e-5,
                      metrics_file: str | None = None, smoothing_s: float = 0.3,
                      calibration: dict | None = None, calibration_source: str = "calibration") -> tuple[Path, Path]:  # fmt: skip
    """Export ``model`` (loaded from ``ckpt_path`` with ``load_checkpoint``); ``landmarks``/``world`` are real windows
    for the parity check. ``calibration`` (a musclevision-calibrate result) puts its temperature into the graph and
    its threshold into the window policy, unless ``threshold`` is given."""
    ckpt_path, out_dir = Path(ckpt_path), Path(out_dir)
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name={name!r} must be a plain file name, e.g. name=best")
    block, calibrated_threshold = calibration_for(model, calibration, calibration_source) if calibration else (None, 0.6)
    threshold = calibrated_threshold if threshold is None else threshold
    temperature = block.temperature if block else 1.0
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"no_exercise_threshold={threshold!r} must be between 0 and 1")
    if not 0.0 <= smoothing_s <= 10.0:
        raise ValueError(f"smoothing_s={smoothing_s!r} must be between 0 and 10 seconds")
    model.eval()
    window = int(model.hparams.window)
    tmp_onnx, tmp_card = temporary_path(out_dir, ".onnx.tmp"), temporary_path(out_dir, ".json.tmp")
    try:
        export_onnx(model.net, tmp_onnx, window, temperature)
        parity = check_parity(model.net, tmp_onnx, landmarks, world, tolerance, temperature)
        policy = window_policy(model, fps, threshold, smoothing_s)
        card = build_card(name, model, f"{name}.onnx", policy, parity, run_metrics(ckpt_path, metrics_file), ckpt_path, block)
        tmp_card.write_text(json.dumps(card.model_dump(mode="json", exclude_none=True), indent=2) + "\n")
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
