"""Window- and clip-level classification metrics (torchmetrics), from collected probabilities.

Window level is what the live page experiences: one decision per ``window``-frame window.
Clip level averages the window probabilities of each clip, the way a whole video is judged.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """accuracy, balanced accuracy (mean per-class recall), per-class accuracy and confusion matrix."""
    preds = probs.argmax(-1)
    return {
        "acc": multiclass_accuracy(preds, labels, num_classes, average="micro").item(),
        "bacc": multiclass_accuracy(preds, labels, num_classes, average="macro").item(),
        "per_class": multiclass_accuracy(preds, labels, num_classes, average="none").tolist(),
        "confusion": multiclass_confusion_matrix(preds, labels, num_classes).tolist(),
        "count": int(len(labels)),
    }


def report_value(report: dict, metric: str) -> float | None:
    """A logged metric name read from an evaluation report: ``val/window_bacc`` -> report["window"]["bacc"]."""
    level, name = metric.split("/", 1)[-1].rsplit("_", 1)
    value = report.get(level, {}).get(name)
    return None if value is None else float(value)


def clip_probabilities(probs: torch.Tensor, labels: torch.Tensor, clips: torch.Tensor):
    """Mean window probability per clip -> (clip probs [N,C], clip labels [N], clip ids [N])."""
    ids, inverse = torch.unique(clips, return_inverse=True)
    total = torch.zeros(len(ids), probs.shape[1], dtype=probs.dtype).index_add_(0, inverse, probs)
    count = torch.zeros(len(ids), dtype=probs.dtype).index_add_(0, inverse, torch.ones_like(inverse, dtype=probs.dtype))
    clip_labels = torch.zeros(len(ids), dtype=labels.dtype).scatter_(0, inverse, labels)
    return total / count[:, None], clip_labels, ids


class EvalCollector:
    """Accumulates one evaluation pass; ``compute()`` returns {"window": ..., "clip": ...}."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.probs, self.labels, self.clips = [], [], []

    def update(self, probs: torch.Tensor, labels: torch.Tensor, clips: torch.Tensor) -> None:
        self.probs.append(probs.detach().float().cpu())
        self.labels.append(labels.detach().cpu())
        self.clips.append(clips.detach().cpu())

    def __bool__(self) -> bool:
        return bool(self.probs)

    def compute(self, clip_level: bool = True) -> dict:
        probs, labels, clips = torch.cat(self.probs), torch.cat(self.labels), torch.cat(self.clips)
        result = {"window": classification_metrics(probs, labels, self.num_classes)}
        if clip_level:
            clip_probs, clip_labels, ids = clip_probabilities(probs, labels, clips)
            result["clip"] = classification_metrics(clip_probs, clip_labels, self.num_classes)
            correct = (probs.argmax(-1) == labels).float()
            _, inverse = torch.unique(clips, return_inverse=True)
            hits = torch.zeros(len(ids)).index_add_(0, inverse, correct)
            windows = torch.zeros(len(ids)).index_add_(0, inverse, torch.ones_like(correct))
            result["per_clip"] = {  # which clips go wrong: the first thing to look at after a score
                "clip": ids.tolist(), "label": clip_labels.tolist(), "predicted": clip_probs.argmax(-1).tolist(),
                "window_acc": (hits / windows).tolist(), "windows": windows.long().tolist(),
            }  # fmt: skip
        return result
