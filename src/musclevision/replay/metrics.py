"""What the page shows, scored against ground truth: rep counts, the displayed exercise over time, logged bouts
(calibration: musclevision.calibrate).

Plain numpy on the engine's outputs (musclevision.replay.engine), so the same scores serve the report script,
the tests and anyone comparing two models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# -- rep counts ------------------------------------------------------------------------------------
def rep_scores(predicted, true) -> dict:
    """Normalized MAE (mean |p - t| / t over clips with t > 0), off-by-one and exact accuracy (all clips)."""
    p, t = np.asarray(predicted, dtype=float), np.asarray(true, dtype=float)
    if len(p) == 0:
        return {"clips": 0, "nmae": float("nan"), "off_by_one": float("nan"), "exact": float("nan")}
    counted = t > 0
    nmae = float(np.mean(np.abs(p[counted] - t[counted]) / t[counted])) if counted.any() else float("nan")
    return {"clips": int(len(p)), "nmae": nmae, "off_by_one": float(np.mean(np.abs(p - t) <= 1)),
            "exact": float(np.mean(p == t)), "mean_error": float(np.mean(p - t))}  # fmt: skip


# -- bouts -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bout:
    exercise: str
    start_s: float
    end_s: float
    reps: int = 0


def match_bouts(predicted: list[Bout], true: list[Bout], tolerance_s: float = 1.0) -> dict:
    """Greedy one-to-one matching: a logged bout is right when a true bout has its exercise and both its start and
    end within ``tolerance_s``. Returns precision, recall, F1 and the matched pairs (indices)."""
    pairs, used = [], set()
    for i, p in enumerate(predicted):
        best = None
        for j, t in enumerate(true):
            if j in used or t.exercise != p.exercise:
                continue
            error = max(abs(p.start_s - t.start_s), abs(p.end_s - t.end_s))
            if error <= tolerance_s and (best is None or error < best[1]):
                best = (j, error)
        if best is not None:
            used.add(best[0])
            pairs.append((i, best[0]))
    tp = len(pairs)
    precision = tp / len(predicted) if predicted else float(not true)
    recall = tp / len(true) if true else float(not predicted)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "predicted": len(predicted), "true": len(true), "precision": precision, "recall": recall, "f1": f1,
            "pairs": pairs}  # fmt: skip


# -- the displayed exercise over time ------------------------------------------------------------------
def displayed_accuracy(times_s, shown, truth, changes_s, settle_s: float = 1.5) -> dict:
    """Share of frames whose displayed exercise (None = unknown / no person) equals the truth (None = nobody
    there), counting only frames at least ``settle_s`` after the last change of the truth."""
    times_s = np.asarray(times_s, dtype=float)
    changes = np.sort(np.asarray(changes_s, dtype=float))
    last = changes[np.searchsorted(changes, times_s, side="right") - 1] if len(changes) else np.full(len(times_s), -np.inf)
    scored = times_s - last >= settle_s
    right = np.array([a == b for a, b in zip(shown, truth)])
    return {"frames": int(scored.sum()), "accuracy": float(right[scored].mean()) if scored.any() else float("nan")}


def recognition_delays(times_s, shown, segments, give_up_s: float = 10.0) -> list[float]:
    """Per true exercise segment [(exercise, start_s, end_s)], seconds from its start until the display first shows
    it (NaN when it never does before the segment ends)."""
    times_s = np.asarray(times_s, dtype=float)
    delays = []
    for exercise, start, end in segments:
        inside = (times_s >= start) & (times_s < min(end, start + give_up_s))
        hits = [t for t, s, i in zip(times_s, shown, inside) if i and s == exercise]
        delays.append(float(hits[0] - start) if hits else float("nan"))
    return delays
