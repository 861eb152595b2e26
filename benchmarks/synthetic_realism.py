"""How close the synthetic generator is to MediaPipe on the real clips: the statistics it was calibrated on.

    python benchmarks/synthetic_realism.py [CACHE_DIR] [--groups 40]

Prints, per class, real against synthetic (10th/50th/90th percentile over clips): joint angles (knee depth,
elbow, shoulder), elbow range, wrist height along the torso, stance (ankle / hip distance), torso angle to
the camera's vertical, apparent view (0 = facing the camera, 90 = side, 180 = back); then MediaPipe's world
bone lengths relative to the torso, how rigid they are, and the share of low-visibility landmarks per part.
CACHE_DIR defaults to data/cache/ucf101-full; it is only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from musclevision.data.synthetic import EXERCISES, synthesize_dataset
from musclevision.extract import KeypointCache
from musclevision.pose.geometry import joint_angle
from musclevision.pose.skeleton import BODY_PARTS, landmark

L = {n: landmark(n) for n in ("left_shoulder", "right_shoulder", "left_elbow", "left_wrist", "right_wrist", "left_hip",
                              "right_hip", "left_knee", "left_ankle", "right_ankle")}  # fmt: skip
BONES = {"upper arm": ("left_shoulder", "left_elbow"), "forearm": ("left_elbow", "left_wrist"),
         "thigh": ("left_hip", "left_knee"), "shank": ("left_knee", "left_ankle"),
         "shoulders": ("left_shoulder", "right_shoulder"), "hips": ("left_hip", "right_hip")}  # fmt: skip
SHOULDERS, HIPS, WRISTS = (
    [L["left_shoulder"], L["right_shoulder"]],
    [L["left_hip"], L["right_hip"]],
    [L["left_wrist"], L["right_wrist"]],
)


def posture(w: np.ndarray) -> dict:
    """Per-clip statistics of world landmarks [T, 33, 3] (frames with a person)."""
    hip, shoulder = w[:, HIPS].mean(1), w[:, SHOULDERS].mean(1)
    torso = np.linalg.norm(shoulder - hip, axis=-1)
    up = (shoulder - hip) / torso[:, None]
    elbow = (joint_angle(w, "left_elbow") + joint_angle(w, "right_elbow")) / 2
    side = (w[:, L["left_hip"]] - w[:, L["right_hip"]]) + (w[:, L["left_shoulder"]] - w[:, L["right_shoulder"]])
    view = np.degrees(np.arctan2(-side[:, 2], side[:, 0]))
    return {
        "knee min": np.percentile(np.minimum(joint_angle(w, "left_knee"), joint_angle(w, "right_knee")), 5),
        "elbow": np.median(elbow), "elbow range": np.subtract(*np.percentile(elbow, [95, 5])),
        "shoulder": np.median((joint_angle(w, "left_shoulder") + joint_angle(w, "right_shoulder")) / 2),
        "wrist height": np.median(((w[:, WRISTS].mean(1) - hip) * up).sum(-1) / torso),
        "stance": np.median(np.linalg.norm(w[:, L["left_ankle"]] - w[:, L["right_ankle"]], axis=-1)
                            / np.linalg.norm(w[:, L["left_hip"]] - w[:, L["right_hip"]], axis=-1)),
        "torso tilt": np.median(np.degrees(np.arccos(np.clip(-up[:, 1], -1, 1)))),
        "view": abs(np.degrees(np.angle(np.median(np.exp(1j * np.radians(view)))))),
    }  # fmt: skip


def bones(worlds: list[np.ndarray]) -> dict:
    """Median bone length / torso length, and the spread of each bone's length within a clip (quartiles)."""
    ratio, spread = {k: [] for k in BONES}, []
    for w in worlds:
        torso = np.median(np.linalg.norm(w[:, SHOULDERS].mean(1) - w[:, HIPS].mean(1), axis=-1))
        for name, (a, b) in BONES.items():
            length = np.linalg.norm(w[:, landmark(a)] - w[:, landmark(b)], axis=-1)
            ratio[name].append(np.median(length) / torso)
            spread.append(length / np.median(length))
    iqr = np.subtract(*np.percentile(np.concatenate(spread), [75, 25]))
    return {**{k: np.median(v) for k, v in ratio.items()}, "length IQR": iqr}


def low_visibility(images: list[np.ndarray]) -> dict:
    v = np.concatenate(images)[..., 3]
    parts = {"face": BODY_PARTS["face"], "shoulders+hips": (*SHOULDERS, *HIPS), "arms": BODY_PARTS["both arms"],
             "legs": BODY_PARTS["left leg"] + BODY_PARTS["right leg"]}  # fmt: skip
    return {name: (v[:, list(ids)] < 0.5).mean() for name, ids in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache_dir", nargs="?", default="data/cache/ucf101-full", type=Path)
    parser.add_argument("--groups", type=int, default=40, help="synthetic people (each does every class once)")
    args = parser.parse_args(argv)
    if not (args.cache_dir / "cache.json").is_file():
        print(f"synthetic_realism: no keypoint cache at {args.cache_dir} (give its folder)", file=sys.stderr)
        return 2
    cache = KeypointCache(args.cache_dir)
    data = {"real": {}, "synthetic": {}}
    for record in cache.videos():
        clip = cache.load(record.video_id)
        seen = ~np.isnan(clip.world[:, 0, 0])
        if seen.sum() >= 8:
            data["real"].setdefault(record.label, []).append((clip.image[seen], clip.world[seen].astype(float)))
    for clip in synthesize_dataset(EXERCISES, groups=args.groups, clips_per_group=1):
        seen = clip.has_person
        data["synthetic"].setdefault(clip.label, []).append((clip.image[seen], clip.world[seen].astype(float)))
    print("posture per clip, percentiles 10/50/90 (angles in degrees, lengths in torso lengths)")
    for label in EXERCISES:
        for kind in ("real", "synthetic"):
            stats = [posture(w) for _, w in data[kind].get(label, [])]
            if stats:
                spread = {k: np.percentile([s[k] for s in stats], [10, 50, 90]) for k in stats[0]}
                cells = [f"{k} {'/'.join(f'{v:.2g}' for v in p)}" for k, p in spread.items()]
                print(f"  {label[:12]:<12} {kind[:4]:<4} n={len(stats):<3} " + "  ".join(cells))
    for kind in ("real", "synthetic"):
        clips = [c for label in data[kind].values() for c in label if c]
        b, v = bones([w for _, w in clips]), low_visibility([i for i, _ in clips])
        print(f"{kind:<9} bones/torso: " + " ".join(f"{k} {x:.2f}" for k, x in b.items()))
        print(f"{kind:<9} visibility < 0.5: " + " ".join(f"{k} {x:.1%}" for k, x in v.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
