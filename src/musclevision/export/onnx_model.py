"""The exported graph: raw BlazePose landmarks of the last W frames in, class probabilities out.

Everything between (NaN masking, feature normalization, the recurrence, softmax) is inside
the graph, so a runtime only has to hand over what MediaPipe returned. The masked LSTM/GRU
exports as gathers + an ONNX LSTM/GRU node (see models/rnn.py): plain tensors, dynamic batch
and time axes, opset 17. An ensemble is one graph too: its members side by side, their
probabilities averaged.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from musclevision.models.classifier import Ensemble, SequenceClassifier
from musclevision.pose.skeleton import NUM_LANDMARKS

OPSET = 17


class ProbabilityGraph(nn.Module):
    """``(landmarks, world) -> probabilities [B,C]`` of one classifier, or the mean of an ensemble's, with the
    logits divided by ``temperature`` (musclevision.calibrate: honest probabilities; an ensemble's log mean)."""

    def __init__(self, net: SequenceClassifier | Ensemble, temperature: float = 1.0):
        super().__init__()
        self.net = net
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / float(temperature)))

    @property
    def uses_world(self) -> bool:
        return self.net.uses_world

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(self.net(landmarks, world) * self.inverse_temperature, dim=-1)


def input_names(graph: ProbabilityGraph | SequenceClassifier | Ensemble) -> list[str]:
    return ["landmarks", "world"] if graph.uses_world else ["landmarks"]


def export_onnx(graph: ProbabilityGraph, path: Path, window: int) -> None:
    """Write ``graph`` (in eval mode) as an ONNX graph with dynamic batch/time axes and check it."""
    graph = graph.eval()
    names = input_names(graph)
    example = (torch.zeros(2, window, NUM_LANDMARKS, 4), torch.zeros(2, window, NUM_LANDMARKS, 3))[: len(names)]
    axes = {name: {0: "batch", 1: "time"} for name in names} | {"probabilities": {0: "batch"}}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which cannot yet emit opset 17
        # for the LSTM here without a failing version conversion; this path is exact (parity-checked).
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, str(path), input_names=names, output_names=["probabilities"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)  # fmt: skip
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def onnx_probabilities(path: Path, landmarks: np.ndarray, world: np.ndarray | None = None) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"landmarks": landmarks.astype(np.float32)}
    if len(session.get_inputs()) > 1:
        feeds["world"] = world.astype(np.float32)
    return session.run(["probabilities"], feeds)[0]


def parity_cases(landmarks: np.ndarray, world: np.ndarray, seed: int = 0) -> list[tuple]:
    """Real windows plus the edge cases a live page produces: no person at all, one frame, longer history."""
    rng = np.random.default_rng(seed)
    cases = [("real windows", landmarks, world)]
    empty = np.full_like(landmarks[:4], np.nan), np.full_like(world[:4], np.nan)
    cases.append(("windows without a person", *empty))
    cases.append(("single frame", landmarks[:8, -1:], world[:8, -1:]))
    longer = rng.choice(len(landmarks), size=(8, 3))
    cases.append(("3x longer history", np.concatenate(list(landmarks[longer].transpose(1, 0, 2, 3, 4)), axis=1),
                  np.concatenate(list(world[longer].transpose(1, 0, 2, 3, 4)), axis=1)))  # fmt: skip
    return cases


def check_parity(graph: ProbabilityGraph, path: Path, landmarks: np.ndarray, world: np.ndarray, tolerance: float) -> dict:
    """Max |onnxruntime - PyTorch| per case; raises when any exceeds ``tolerance``."""
    graph = graph.eval()
    report = {}
    for name, lm, wd in parity_cases(landmarks, world):
        try:  # a network that cannot take this input (a fixed number of frames, say) fails here, in either runtime
            with torch.no_grad():
                expected = graph(torch.from_numpy(lm), torch.from_numpy(wd) if graph.uses_world else None).numpy()
            got = onnx_probabilities(path, lm, wd)
        except Exception as exc:
            if name == "real windows" or isinstance(exc, MemoryError):  # not about the inputs' shapes: as it is
                raise
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise RuntimeError(f"parity case {name!r} ({len(lm)} windows x {lm.shape[1]} frames) failed: {first[:300]}. "
                               "An exported network must take any number of windows and of frames (1 to many; frames "
                               "without a person are NaN rows), as the page gives it") from exc  # fmt: skip
        if got.shape != expected.shape or got.shape[0] != len(lm):
            raise RuntimeError(f"parity case {name!r}: {len(lm)} windows in, probabilities of shape {list(got.shape)} out of "
                               f"ONNX ({list(expected.shape)} of PyTorch): one row per window is expected")  # fmt: skip
        report[name] = {"windows": int(len(lm)), "frames": int(lm.shape[1]), "max_abs_diff": float(np.abs(got - expected).max())}
    worst = max(r["max_abs_diff"] for r in report.values())
    if not np.isfinite(worst) or worst > tolerance:
        raise RuntimeError(f"ONNX and PyTorch disagree (max abs diff {worst:.2e} > {tolerance:.0e}): {report}")
    return report


def temporary_path(directory: Path, suffix: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, suffix=suffix, delete=False)
    handle.close()
    os.chmod(handle.name, 0o644)  # exports are meant to be shared and served
    return Path(handle.name)
