"""Synthetic workouts from real clips: several exercises one after another, with gaps where nobody is in view.

A workout is what a person does in front of the page: a few exercise bouts, stepping out of view between
them. Made from held-out clips (of groups the model never trained on), it gives the page's decisions a
known truth over time: which exercise when, where each bout starts and ends, how many reps it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musclevision.replay.engine import Keypoints


@dataclass(frozen=True)
class Segment:
    exercise: str | None  # None: nobody in view
    start_s: float
    end_s: float
    video_id: str | None = None
    reps: int | None = None  # reference count of the clip, when it has one


def build_workout(name: str, clips: list[Keypoints], gaps_s: list[float], fps: float = 25.0,
                  reps: dict[str, int] | None = None) -> tuple[Keypoints, list[Segment]]:  # fmt: skip
    """``clips`` in order, with ``gaps_s[i]`` seconds without a person before clip i (len(gaps_s) == len(clips) + 1:
    the last gap follows the last clip). Each clip keeps its own frame times; gap frames are 1/fps apart."""
    if len(gaps_s) != len(clips) + 1:
        raise ValueError("give one gap before every clip and one after the last")
    images, worlds, times, segments = [], [], [], []
    t = 0.0  # ms: the time of the next frame
    step = 1000.0 / fps

    def gap(seconds: float):
        nonlocal t
        n = int(round(seconds * fps))
        if n:
            images.append(np.full((n, 33, 4), np.nan, np.float32))
            worlds.append(np.full((n, 33, 3), np.nan, np.float32))
            times.append(t + step * np.arange(n))
            segments.append(Segment(None, t / 1000.0, (t + step * n) / 1000.0))
            t += step * n

    for clip, before in zip(clips, gaps_s):
        gap(before)
        own = np.asarray(clip.timestamps_ms, dtype=np.float64)
        own = own - own[0]
        span = own[-1] + (float(np.median(np.diff(own))) if len(own) > 1 else step)
        images.append(clip.image)
        worlds.append(clip.world)
        times.append(t + own)
        segments.append(Segment(clip.label, t / 1000.0, (t + span) / 1000.0, clip.video_id, (reps or {}).get(clip.video_id)))
        t += span
    gap(gaps_s[-1])
    keypoints = Keypoints(name, np.concatenate(images), np.concatenate(worlds), np.concatenate(times), label=None,
                          meta={"segments": [s.__dict__ for s in segments]})  # fmt: skip
    return keypoints, segments


def random_workouts(clips: list[Keypoints], count: int, rng: np.random.Generator, bouts: tuple[int, int] = (3, 5),
                    gap_s: tuple[float, float] = (1.5, 4.0), prefix: str = "workout",
                    reps: dict[str, int] | None = None) -> list[tuple[Keypoints, list[Segment]]]:  # fmt: skip
    """``count`` workouts, each of 3-5 clips where consecutive clips are of different exercises."""
    by_class: dict[str, list[Keypoints]] = {}
    for clip in clips:
        by_class.setdefault(clip.label, []).append(clip)
    classes = sorted(by_class)
    if len(classes) < 2:
        raise ValueError("workouts need clips of at least two exercises")
    out = []
    for w in range(count):
        chosen, previous = [], None
        for _ in range(int(rng.integers(bouts[0], bouts[1] + 1))):
            label = rng.choice([c for c in classes if c != previous])
            chosen.append(by_class[label][int(rng.integers(len(by_class[label])))])
            previous = label
        gaps = rng.uniform(*gap_s, len(chosen) + 1).round(2).tolist()
        out.append(build_workout(f"{prefix}-{w:02d}", chosen, gaps, reps=reps))
    return out
