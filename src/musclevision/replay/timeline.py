"""The timeline PNG of one replayed video: probabilities, the displayed exercise and the logged bouts, rep events."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STATE_COLOURS = {"unknown": "#b0b0b0", "buffering": "#dddddd", "no_person": "#ffffff", "pose_only": "#dddddd"}


def class_colours(classes: list[str]) -> dict[str, str]:
    cmap = plt.get_cmap("tab10")
    return {c: matplotlib.colors.to_hex(cmap(i % 10)) for i, c in enumerate(classes)}


def _spans(times: np.ndarray, values: list) -> list[tuple[float, float, object]]:
    """Runs of equal values as (start, end, value); each frame lasts until the next one starts."""
    if not len(times):
        return []
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    ends = np.append(times[1:], times[-1] + step)
    spans, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            spans.append((float(times[start]), float(ends[i - 1]), values[start]))
            start = i
    return spans


def plot_timeline(
    result: dict, path: Path, title: str, threshold: float, truth: list[tuple[str | None, float, float]] | None = None
):
    """``result``: the engine's answer for one clip (musclevision.replay.engine); ``truth``: optional true segments
    (exercise or None, start_s, end_s)."""
    classes, trace = result["classes"], result["trace"]
    colours = class_colours(classes)
    t = np.asarray(trace["t"], dtype=float) / 1000.0
    fig, (ax_p, ax_s) = plt.subplots(2, 1, figsize=(11, 4.6), sharex=True, gridspec_kw={"height_ratios": [2.2, 1.3]})
    probabilities = np.array([p if p is not None else [np.nan] * len(classes) for p in trace["probabilities"]], dtype=float)
    raw = np.array([p if p is not None else [np.nan] * len(classes) for p in trace["raw"]], dtype=float)
    for k, c in enumerate(classes):
        ax_p.plot(t, probabilities[:, k], color=colours[c], lw=1.6, label=c)
        ax_p.plot(t, raw[:, k], ".", color=colours[c], ms=1.5, alpha=0.5)
    ax_p.axhline(threshold, color="k", ls=":", lw=1)
    ax_p.text(t[0] if len(t) else 0, threshold, f" threshold {threshold:.2f}", va="bottom", fontsize=8)
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("probability\n(line: smoothed)")
    ax_p.legend(fontsize=8, ncol=len(classes), loc="upper center", bbox_to_anchor=(0.5, 1.18), frameon=False)
    ax_p.grid(alpha=0.3)

    # Lanes: the truth (when known), what the page shows, the session log's bouts; rep events as ticks.
    lanes = (["truth"] if truth else []) + ["shown", "log"]
    y = {name: len(lanes) - 1 - i for i, name in enumerate(lanes)}
    if truth:
        for exercise, start, end in truth:
            ax_s.barh(y["truth"], end - start, left=start, height=0.7, color=colours.get(exercise, "#ffffff"),
                      edgecolor="#999999" if exercise is None else "none", lw=0.5)  # fmt: skip
    shown = [label if state == "exercise" else state for state, label in zip(trace["state"], trace["label"])]
    for start, end, value in _spans(t, shown):
        ax_s.barh(y["shown"], end - start, left=start, height=0.7, color=colours.get(value, STATE_COLOURS.get(value, "#ffffff")))
    for row in result["rows"]:
        ax_s.barh(y["log"], row["end_s"] - row["start_s"], left=row["start_s"], height=0.7, color=colours.get(row["exercise"]),
                  edgecolor="k", lw=0.6)  # fmt: skip
        ax_s.text((row["start_s"] + row["end_s"]) / 2, y["log"], f"{row['reps']} rep{'s' if row['reps'] != 1 else ''}",
                  ha="center", va="center", fontsize=8, color="white", weight="bold")  # fmt: skip
    for event in result["events"]:
        ax_s.plot([event["t"] / 1000.0] * 2, [y["log"] + 0.45, y["log"] + 0.75], color=colours.get(event["exercise"]), lw=2)
    ax_s.set_yticks([y[n] for n in lanes], [{"truth": "truth", "shown": "shown", "log": "log + reps"}[n] for n in lanes])
    ax_s.set_ylim(-0.6, len(lanes) - 0.2)
    ax_s.set_xlabel("seconds")
    grey = [matplotlib.patches.Patch(color=STATE_COLOURS["buffering"], label="filling the window"),
            matplotlib.patches.Patch(color=STATE_COLOURS["unknown"], label="unknown"),
            matplotlib.patches.Patch(facecolor="white", edgecolor="#999999", label="no person"),
            matplotlib.lines.Line2D([], [], color="#555555", marker="|", ls="none", ms=9, mew=2,
                                    label="a rep counted")]  # fmt: skip
    ax_s.legend(handles=grey, fontsize=8, loc="lower right", ncol=4, frameon=False, bbox_to_anchor=(1.0, -0.6))
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
