"""Estimates that predict unseen people: accuracy per held-out group, and under views and bodies never filmed.

A fold's mean hides whole groups that go wrong (one person's style, one camera's angle). So every
evaluation also reports:

- per group: clip accuracy of each UCF101 group of each class (one source video: one person in one
  place), and the worst of them;
- the stress suite: the same held-out windows seen from elsewhere and done by other bodies
  (``pose/transforms.py``: world and image landmarks moved together), accuracy per condition and its
  drop against the windows as filmed. A model that recognises the movement, not the view, loses little.
"""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import torch

from musclevision.models.metrics import EvalCollector
from musclevision.pose import transforms

DEG = np.pi / 180
CONDITIONS = {
    "turned 45°": partial(transforms.rotate_yaw, angle=45 * DEG),
    "turned 90°": partial(transforms.rotate_yaw, angle=90 * DEG),
    "turned 135°": partial(transforms.rotate_yaw, angle=135 * DEG),
    "turned 180°": partial(transforms.rotate_yaw, angle=180 * DEG),
    "mirrored": lambda image, world, aspect: transforms.mirror(image, world),
    "camera 25° higher": partial(transforms.rotate_pitch, angle=25 * DEG),
    "camera 15° lower": partial(transforms.rotate_pitch, angle=-15 * DEG),
    "long legs, short arms": partial(
        transforms.scale_segments, factors={"thighs": 1.15, "shins": 1.15, "upper arms": 0.88, "forearms": 0.88}
    ),
    "short legs, long torso": partial(transforms.scale_segments, factors={"thighs": 0.87, "shins": 0.87, "torso": 1.12}),
}  # name -> (image [B,T,33,4], world [B,T,33,3], aspect [B]) -> (image, world)


def person_group(video_id: str) -> str:
    """``BenchPress/v_BenchPress_g11_c02`` -> ``BenchPress/g11``: the clips of one source video (person, place)."""
    label = video_id.split("/")[0] if "/" in video_id else ""
    match = re.search(r"_g(\d+)_", video_id)
    group = f"g{int(match.group(1)):02d}" if match else video_id.rsplit("/", 1)[-1]
    return f"{label}/{group}" if label else group


def group_metrics(evaluation: dict) -> dict:
    """Clip accuracy per person group (from the report's named ``per_clip`` rows), and the worst group."""
    per_clip = evaluation.get("per_clip") or {}
    names = per_clip.get("video_id")
    if not names:
        return {}
    groups: dict[str, list[bool]] = {}
    for name, label, predicted in zip(names, per_clip["label"], per_clip["predicted"], strict=True):
        groups.setdefault(person_group(name), []).append(predicted == label)
    table = {g: {"clips": len(hits), "clip_acc": sum(hits) / len(hits)} for g, hits in sorted(groups.items())}
    worst = min(table, key=lambda g: (table[g]["clip_acc"], -table[g]["clips"]))
    return {"groups": table, "worst_group": {"group": worst, **table[worst]}}


def stress_summary(results: dict[str, dict], reference: dict) -> dict:
    """Per condition: window and clip accuracy, and the drop (points of accuracy) against ``reference`` (as filmed)."""
    summary = {}
    for name, evaluation in results.items():
        row = {f"{level}_acc": evaluation[level]["acc"] for level in ("window", "clip") if level in evaluation}
        row |= {f"{lv}_drop": reference[lv]["acc"] - row[f"{lv}_acc"] for lv in ("window", "clip") if f"{lv}_acc" in row}
        summary[name] = row
    if summary:
        worst = worst_condition(summary)
        summary["worst"] = {"condition": worst, **summary[worst]}
    return summary


def worst_condition(rows: dict[str, dict]) -> str:
    """The condition of ``{condition: {clip_drop, window_drop, ...}}`` that loses most: the largest clip drop; among
    equal ones (none at all, often), the largest window drop."""
    return max(rows, key=lambda n: (rows[n].get("clip_drop", 0.0), rows[n].get("window_drop", 0.0)))


@torch.no_grad()
def evaluate_loader(model, loader, num_classes: int) -> dict:
    """Window- and clip-level metrics of ``model`` on one window loader (quietly, no trainer), clips named."""
    collector = EvalCollector(num_classes)
    was_training = model.training
    model.eval()
    for batch in loader:
        logits = model(batch["landmarks"].to(model.device), batch["world"].to(model.device))
        collector.update(torch.softmax(logits, -1), batch["label"], batch["clip"])
    model.train(was_training)
    clips = loader.dataset
    result = collector.compute(clip_labels=torch.as_tensor(clips.clip_labels)) if collector else {}
    if "per_clip" in result:
        result["per_clip"]["video_id"] = [clips.clip_names[i] for i in result["per_clip"]["clip"]]
    return result


def stress_suite(model, datamodule, split: str, reference: dict, conditions: dict = CONDITIONS) -> dict:
    """The held-out windows of ``split`` under every condition; ``reference``: the evaluation as filmed."""
    results = {}
    for name, transform in conditions.items():
        loader = datamodule.eval_loaders(split, whole_clips=False, transform=transform)[0]
        results[name] = evaluate_loader(model, loader, len(model.classes))
    return stress_summary(results, reference)
