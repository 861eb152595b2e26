"""Write an evaluation (from ``ExerciseModule.last_eval``) as <stage>_metrics.json + confusion/per-class PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LEVEL_TITLES = {"window": "per window", "clip": "per clip (mean window probability)", "wholeclip": "whole clip"}


def plot_confusion(confusion: list[list[int]], classes: list[str], title: str, path: Path) -> None:
    matrix = np.asarray(confusion, dtype=float)
    share = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.0 * len(classes) + 2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{share[i, j]:.0%}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(
    names: list[str],
    series: list[tuple[str, list]],
    title: str,
    path: Path,
    inches_per_name: float = 1.3,
    label_size: int = 10,
    rotation: int = 20,
) -> None:
    """Accuracy bars grouped by ``names``, one colour per (label, values) series; NaN values are left out."""
    fig, ax = plt.subplots(figsize=(inches_per_name * len(names) + 2, 3.5))
    width = 0.8 / max(len(series), 1)
    for k, (label, values) in enumerate(series):
        ax.bar(np.arange(len(names)) + (k - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(range(len(names)), names, rotation=rotation, ha="right", fontsize=label_size)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the figure grows to hold the legend and the rotated names
    plt.close(fig)


def plot_per_class(levels: dict, classes: list[str], title: str, path: Path) -> None:
    series = [(f"{LEVEL_TITLES.get(level, level)} (acc {m['acc']:.1%})",
               [np.nan if v is None else v for v in m["per_class"]])  # None: no example of that class
              for level, m in levels.items()]  # fmt: skip
    plot_bars(classes, series, title, path)


def worst_clips(evaluation: dict, count: int = 10) -> list[str]:
    per_clip, classes = evaluation.get("per_clip") or {}, evaluation["classes"]
    names = per_clip.get("video_id", per_clip.get("clip", []))
    order = sorted(range(len(names)), key=lambda i: per_clip["window_acc"][i])
    lines = []
    for i in order[:count]:
        if per_clip["window_acc"][i] == 1.0:
            break
        if per_clip["predicted"][i] is None:
            lines.append(f"{names[i]}: no usable window (too few frames with a person in any window: a short clip, "
                         "or a person seldom found), counted wrong")  # fmt: skip
        else:
            lines.append(f"{names[i]}: {per_clip['window_acc'][i]:.0%} of {per_clip['windows'][i]} windows right, "
                         f"clip -> {classes[per_clip['predicted'][i]]}")  # fmt: skip
    return lines


def write_report(evaluation: dict, out_dir: Path, extra: dict | None = None) -> dict[str, Path]:
    """Files written, by name. ``evaluation`` = {"stage", "classes", "window": {...}, "clip": {...}, ...}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    classes, stage = evaluation["classes"], evaluation.get("stage", "eval")
    levels = {k: v for k, v in evaluation.items() if k in LEVEL_TITLES}
    files = {"metrics": out_dir / f"{stage}_metrics.json"}
    files["metrics"].write_text(json.dumps({**evaluation, **(extra or {})}, indent=2))
    for level, metrics in levels.items():
        files[f"confusion_{level}"] = out_dir / f"{stage}_confusion_{level}.png"
        title = f"{stage} {LEVEL_TITLES[level]}: acc {metrics['acc']:.1%}, balanced {metrics['bacc']:.1%}"
        plot_confusion(metrics["confusion"], classes, title, files[f"confusion_{level}"])
    files["per_class"] = out_dir / f"{stage}_per_class.png"
    plot_per_class(levels, classes, f"{stage}: accuracy per class", files["per_class"])
    if evaluation.get("stress") and "window" in evaluation:
        files["stress"] = out_dir / f"{stage}_stress.png"
        plot_stress(evaluation["stress"], evaluation, f"{stage}: other views and bodies (stress suite)", files["stress"])
    return files


def summary_line(evaluation: dict) -> str:
    parts = [f"{level} acc {m['acc']:.1%} (balanced {m['bacc']:.1%}, n={m['count']})"
             for level, m in evaluation.items() if level in LEVEL_TITLES]  # fmt: skip
    if worst := evaluation.get("worst_group"):
        parts.append(f"worst group {worst['group']} {worst['clip_acc']:.0%} of {worst['clips']} clips")
    if worst := (evaluation.get("stress") or {}).get("worst"):
        level = "clip" if "clip_acc" in worst else "window"
        if round(100 * worst[f"{level}_drop"], 1) <= 0:
            parts.append(f"stress: no condition lowers {level} accuracy")
        else:
            parts.append(f"stress: worst {worst['condition']!r} {level} {worst[f'{level}_acc']:.1%} "
                         f"({-100 * worst[f'{level}_drop']:+.1f} points)")  # fmt: skip
    return f"{evaluation.get('stage', 'eval')}: " + "; ".join(parts)


def plot_stress(stress: dict, reference: dict, title: str, path: Path) -> None:
    """Window and clip accuracy as filmed and under each stress condition."""
    names = ["as filmed", *(n for n in stress if n != "worst")]
    series = [(LEVEL_TITLES[level], [reference[level]["acc"] if n == "as filmed" else stress[n].get(f"{level}_acc", np.nan)
                                     for n in names]) for level in ("window", "clip")]  # fmt: skip
    plot_bars(names, series, title, path, inches_per_name=1.0, label_size=8, rotation=30)
