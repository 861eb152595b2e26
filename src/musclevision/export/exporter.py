"""Checkpoint -> ``exports/<name>.onnx`` + ``exports/<name>.json`` (the model card), parity-checked.

Several checkpoints -> one ensemble graph that averages their probabilities (same classes, same
window policy), parity-checked against the PyTorch average, the card listing the members.
Nothing is written unless the ONNX graph passes the checker and matches PyTorch on real
windows (and edge cases) within the tolerance; both files then appear together.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from musclevision.card import (
    CARD_FORMAT,
    DEFAULT_THRESHOLD,
    FILE_NAME,
    SYNTHETIC_WARNING,
    Calibration,
    Member,
    ModelCard,
    PoseModel,
    TensorSpec,
    Training,
    WindowPolicy,
)
from musclevision.data.sources import source_kind
from musclevision.data.splits import split_key
from musclevision.export.onnx_model import OPSET, ProbabilityGraph, check_parity, export_onnx, input_names, temporary_path
from musclevision.extract.landmarker import PoseSettings
from musclevision.extract.pose_bundle import bundle_path
from musclevision.models.classifier import Ensemble
from musclevision.models.module import ExerciseModule, check_members
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


def portable_tag(tag):
    """A run's tag ``key=value`` with a path value made portable as ``portable`` does; outside the project, the path
    is left out (``data.source.cache_dir=<a path outside the project>``)."""
    key, sep, value = tag.partition("=") if isinstance(tag, str) else ("", "", "")
    if not sep or not os.path.isabs(value):
        return tag
    return f"{key}={portable(value) or '<a path outside the project>'}"


def data_kind(run_config: dict) -> str:
    """What the model learned from, as its data source declares it ("real" or "synthetic")."""
    return source_kind(run_config.get("data", {}).get("source"))


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


DATA_KEYS = ("classes", "sampling", "window", "min_detected", "split", "augment", "balance", "train_extra", "train_extra_ratio")
# ^ what a card says of the training data (train_extra: clips mixed into training only, e.g. synthetic ones)


def training_record(model: ExerciseModule, ckpt_path: Path) -> dict:
    """How one network was trained, for the card (checkpoint, network, data, epochs, seed)."""
    config = model.run_config
    return {
        "checkpoint": portable(str(ckpt_path.resolve())),
        "net": model.hparams.net,
        "tags": [portable_tag(t) for t in config.get("tags") or []] or config.get("tags"),
        "data": portable({k: config.get("data", {}).get(k) for k in DATA_KEYS}),
        "source": portable(config.get("data", {}).get("source")),
        "epochs": config.get("trainer", {}).get("max_epochs"),
        "seed": config.get("seed"),
    }  # fmt: skip


def build_card(name: str, models: list[ExerciseModule], graph: ProbabilityGraph, onnx_name: str, policy: WindowPolicy,
               parity: dict, metrics: dict, ckpt_paths: list[Path],
               calibration: Calibration | None = None) -> ModelCard:  # fmt: skip
    kind = "synthetic" if any(data_kind(m.run_config) == "synthetic" for m in models) else "real"
    records = [training_record(m, p) for m, p in zip(models, ckpt_paths, strict=True)]
    if len(records) == 1:
        training = Training(data_kind=kind, warning=SYNTHETIC_WARNING if kind == "synthetic" else None, **records[0])
    else:
        for record, path in zip(records, ckpt_paths, strict=True):
            own = run_metrics(path, None)  # the member's own held-out report: not the ensemble's accuracy
            record["metrics"] = portable({k: own[k] for k in ("source", "split", "window", "clip") if k in own}) or None
        training = Training(data_kind=kind, warning=SYNTHETIC_WARNING if kind == "synthetic" else None,
                            members=[Member(**r) for r in records])  # fmt: skip
    return ModelCard(
        format=CARD_FORMAT,
        name=name,
        onnx=onnx_name,
        classes=models[0].classes,
        inputs=[
            TensorSpec(
                name=n, shape=["batch", "time", *INPUT_LAYOUTS[n][0]], dtype="float32", missing="nan", layout=INPUT_LAYOUTS[n][1]
            )
            for n in input_names(graph)
        ],  # fmt: skip
        outputs=[TensorSpec(name="probabilities", shape=["batch", len(models[0].classes)], dtype="float32")],
        opset=OPSET,
        window_policy=policy,
        pose_model=PoseModel(**pose_model_info(models[0].run_config)),
        calibration=calibration,
        training=training,
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


def calibration_for(models: list[ExerciseModule], calibration: dict, source: str) -> tuple[Calibration, float]:
    """The card's calibration block and the threshold for this checkpoint, from a musclevision-calibrate result:
    a fold checkpoint of the calibrated recipe (or a fold's ensemble, with a ``--ensemble`` calibration) gets the
    temperature fitted without its own fold (its held-out numbers stay honest); any other model (the final one or
    ensemble, trained on every group) the pooled one. A single model's temperature does not fit an ensemble (it is
    less over-confident than its members), nor the other way round: that mismatch is refused."""
    if calibration.get("format") != "musclevision-calibration/1":
        raise ValueError(f"calibration={source} is not a musclevision-calibrate result")
    members = calibration.get("ensemble_members") or 1
    splits = [m.run_config.get("data", {}).get("split") or {} for m in models]
    if any(split_key(s) != split_key(splits[0]) for s in splits[1:]):
        raise ValueError(f"calibration={source}: the ensemble's members held out different groups (e.g. every fold's model "
                         "of a crossval), so no held-out windows can calibrate it; export it without calibration= "
                         "(no_exercise_threshold= sets its threshold)")  # fmt: skip
    if members != len(models):
        fitted = f"ensembles of {members}" if members > 1 else "single models"
        raise ValueError(f"calibration={source} was fitted for {fitted} and this export has {len(models)} model(s): "
                         f"calibrate what you export (musclevision-calibrate{' --ensemble' if len(models) > 1 else ''} "
                         "on the folds of the same recipe)")  # fmt: skip
    split = splits[0]
    # the members hold out the same groups (checked above): do they hold out what the calibrated folds did?
    same_recipe = split_key(split) == split_key({**calibration.get("split", {}), "fold": split.get("fold")})
    fold = str(split.get("fold")) if split.get("protocol") not in (None, "none") else None
    own = same_recipe and fold in calibration.get("fold_temperatures", {})
    temperature = calibration["fold_temperatures"][fold] if own else calibration["temperature"]
    folds = len(calibration.get("checkpoints", []))
    if calibration.get("cross_fitted", folds > 1):
        measured = (f"{calibration['windows']} held-out windows of the {folds} cross-validation folds"
                    + (f" (each fold's ensemble of {members})" if members > 1 else "")
                    + (f", fold {fold}'s temperature fitted on the other folds" if own else ""))  # fmt: skip
    else:
        measured = (f"{calibration['windows']} held-out windows of one fold"
                    + (f" (its ensemble of {members})" if members > 1 else "")
                    + ", the temperature and threshold fitted on them (in-sample)")  # fmt: skip
    block = Calibration(temperature=float(temperature), ece_before=round(float(calibration["ece_before"]), 4),
                        ece_after=round(float(calibration["ece_after"]), 4), measured_on=measured)  # fmt: skip
    return block, float(calibration["threshold"])


def check_pose_models(models: list[ExerciseModule], ckpt_paths: list[Path]) -> None:
    """The page runs one pose model: every member must have learned from its keypoints."""
    for model, path in zip(models[1:], ckpt_paths[1:]):
        first, other = pose_model_info(models[0].run_config), pose_model_info(model.run_config)
        if other != first:
            raise ValueError(f"ensemble members differ in pose model: {ckpt_paths[0]} has {first}, {path} has {other}; "
                             "the page runs one pose model")  # fmt: skip


def check_name(name) -> None:
    """The export's name becomes <name>.onnx and <name>.json next to each other: a plain file name the card accepts."""
    if not isinstance(name, str) or not re.fullmatch(FILE_NAME, name) or len(name) > 200:
        raise ValueError(f"name={name!r} must be a plain file name of letters, digits and _ . + - (not starting with . "
                         "or -), e.g. name=best")  # fmt: skip


def export_checkpoint(model: ExerciseModule | list[ExerciseModule], ckpt_path: str | Path | list, name: str,
                      out_dir: str | Path, landmarks: np.ndarray, world: np.ndarray, fps: float, threshold: float | None = None,
                      tolerance: float = 1e-5, metrics_file: str | None = None, smoothing_s: float = 0.3,
                      calibration: dict | None = None, calibration_source: str = "calibration") -> tuple[Path, Path]:  # fmt: skip
    """Export ``model`` (loaded from ``ckpt_path`` with ``load_checkpoint``), or lists of modules and their checkpoints
    as one ensemble graph; ``landmarks``/``world`` are real windows for the parity check. ``calibration`` (a
    musclevision-calibrate result) puts its temperature into the graph and its threshold into the window policy,
    unless ``threshold`` is given."""
    models = model if isinstance(model, list) else [model]
    ckpt_paths = [Path(p) for p in (ckpt_path if isinstance(ckpt_path, list) else [ckpt_path])]
    out_dir = Path(out_dir)
    if not models or len(models) != len(ckpt_paths):
        raise ValueError(f"{len(models)} models for {len(ckpt_paths)} checkpoints")
    check_name(name)
    block, calibrated_threshold = (
        calibration_for(models, calibration, calibration_source) if calibration else (None, DEFAULT_THRESHOLD)
    )
    threshold = calibrated_threshold if threshold is None else threshold
    temperature = block.temperature if block else 1.0
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"no_exercise_threshold={threshold!r} must be between 0 and 1")
    if not 0.0 <= smoothing_s <= 10.0:
        raise ValueError(f"smoothing_s={smoothing_s!r} must be between 0 and 10 seconds")
    check_members(models, ckpt_paths)
    check_pose_models(models, ckpt_paths)
    net = models[0].net if len(models) == 1 else Ensemble([m.net for m in models])
    graph = ProbabilityGraph(net, temperature).eval()
    window = int(models[0].hparams.window)
    tmp_onnx, tmp_card = temporary_path(out_dir, ".onnx.tmp"), temporary_path(out_dir, ".json.tmp")
    try:
        export_onnx(graph, tmp_onnx, window)
        parity = check_parity(graph, tmp_onnx, landmarks, world, tolerance)
        policy = window_policy(models[0], fps, threshold, smoothing_s)
        metrics = run_metrics(ckpt_paths[0], metrics_file) if len(models) == 1 or metrics_file else {}
        card = build_card(name, models, graph, f"{name}.onnx", policy, parity, metrics, ckpt_paths, block)
        tmp_card.write_text(json.dumps(card.model_dump(mode="json", exclude_none=True), indent=2) + "\n")
        onnx_path, card_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
        os.replace(tmp_onnx, onnx_path)
        os.replace(tmp_card, card_path)
    finally:
        for tmp in (tmp_onnx, tmp_card):
            tmp.unlink(missing_ok=True)
    worst = max(r["max_abs_diff"] for r in parity.values())
    what = "ONNX" if len(models) == 1 else f"ensemble of {len(models)} ONNX"
    log.info("exported %s (+ %s): %s vs PyTorch max abs diff %.1e over %d real windows", onnx_path, card_path.name, what,
             worst, len(landmarks))  # fmt: skip
    return onnx_path, card_path
