"""Window- and clip-level classification metrics (torchmetrics), from collected probabilities.

Window level is what the live page experiences: one decision per ``window``-frame window.
Clip level averages the window probabilities of each clip, the way a whole video is judged.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix

LEVELS = ("window", "clip", "wholeclip")  # per window, per clip (mean of windows), per whole clip as one sequence
NAMES = ("acc", "bacc")


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int,
                           decided: torch.Tensor | None = None) -> dict:  # fmt: skip
    """accuracy, balanced accuracy (mean recall over the classes present), per-class accuracy
    (None for a class with no examples: neither a 0 nor a 1 would be true) and confusion matrix.

    ``decided`` (bool [N]) marks the rows that got a prediction; an undecided one (a clip without
    a single usable window) counts as wrong, as on the live page, instead of vanishing.
    """
    preds = probs.argmax(-1)
    if decided is not None:
        preds = torch.where(decided, preds, num_classes)  # an extra "no decision" class, never a label
    with_none = num_classes + 1
    recall = multiclass_accuracy(preds, labels, with_none, average="none")[:num_classes]
    present = torch.bincount(labels, minlength=num_classes)[:num_classes] > 0
    return {
        "acc": multiclass_accuracy(preds, labels, with_none, average="micro").item(),
        "bacc": recall[present].mean().item(),
        "per_class": [value if here else None for value, here in zip(recall.tolist(), present.tolist(), strict=True)],
        "confusion": multiclass_confusion_matrix(preds, labels, with_none)[:num_classes, :num_classes].tolist(),
        "count": int(len(labels)),
        "undecided": int((preds == num_classes).sum()),
    }


def parse_metric(metric: str) -> tuple[str, str]:
    """A logged metric name -> (level, name) of the evaluation report: ``val/window_bacc`` -> ("window", "bacc")."""
    level, _, name = metric.split("/", 1)[-1].rpartition("_")
    if level not in LEVELS or name not in NAMES:
        choices = ", ".join(f"val/{lv}_{n}" for lv in LEVELS for n in NAMES)
        raise ValueError(f"unknown metric {metric}; use one of {choices}")
    return level, name


def report_value(report: dict, metric: str) -> float | None:
    """A logged metric name read from an evaluation report: ``val/window_bacc`` -> report["window"]["bacc"]."""
    level, name = parse_metric(metric)
    value = report.get(level, {}).get(name)
    return None if value is None else float(value)


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

    def compute(self, clip_level: bool = True, clip_labels: torch.Tensor | None = None) -> dict:
        """``clip_labels``: the label of every clip in the evaluated split, indexed by clip id, so
        that clips without a usable window count (as wrong) in the clip-level numbers."""
        probs, labels, clips = torch.cat(self.probs), torch.cat(self.labels), torch.cat(self.clips)
        result = {"window": classification_metrics(probs, labels, self.num_classes)}
        if not clip_level:
            return result
        # Clip level: the mean of the window probabilities of each clip. With ``clip_labels`` every clip
        # of the split is a row (ids are positions in it), a clip without windows is undecided.
        if clip_labels is None:
            ids, index = torch.unique(clips, return_inverse=True)
            clip_label = torch.zeros(len(ids), dtype=labels.dtype).scatter_(0, index, labels)
        else:
            ids, index, clip_label = torch.arange(len(clip_labels)), clips, clip_labels.to(labels.dtype)
        windows = torch.zeros(len(ids)).index_add_(0, index, torch.ones(len(clips)))
        clip_probs = torch.zeros(len(ids), probs.shape[1], dtype=probs.dtype).index_add_(0, index, probs)
        clip_probs /= windows.clamp(min=1)[:, None]
        hits = torch.zeros(len(ids)).index_add_(0, index, (probs.argmax(-1) == labels).float())
        decided = windows > 0
        result["clip"] = classification_metrics(clip_probs, clip_label, self.num_classes, decided)
        predicted = clip_probs.argmax(-1).tolist()
        result["per_clip"] = {  # which clips go wrong: the first thing to look at after a score
            "clip": ids.tolist(), "label": clip_label.tolist(),
            "predicted": [p if d else None for p, d in zip(predicted, decided.tolist(), strict=True)],
            "window_acc": (hits / windows.clamp(min=1)).tolist(), "windows": windows.long().tolist(),
        }  # fmt: skip
        return result
