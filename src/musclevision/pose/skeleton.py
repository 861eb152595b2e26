"""MediaPipe BlazePose's 33-landmark layout, defined once: names, mirror twins, bones, joints, body parts.

Everything here is plain data (tuples of indices), so the same values can be written to the page
(``skeleton_dict``) and compared there; and the one test for a frame without a person (``has_person``).
Indices follow MediaPipe's order; "left" is the person's left.
"""

from __future__ import annotations

import numpy as np

LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_LANDMARKS = len(LANDMARK_NAMES)


def landmark(name: str) -> int:
    """Index of a landmark by MediaPipe name, e.g. ``landmark("left_hip") == 23``."""
    return LANDMARK_NAMES.index(name)


LEFT_SHOULDER, RIGHT_SHOULDER = landmark("left_shoulder"), landmark("right_shoulder")
LEFT_HIP, RIGHT_HIP = landmark("left_hip"), landmark("right_hip")

# Each landmark's mirror twin (left <-> right, wherever the side is in the name: "left_eye" and
# "mouth_left"); midline points map to themselves.
MIRROR = tuple(landmark(n.replace("left", "@").replace("right", "left").replace("@", "right")) for n in LANDMARK_NAMES)
# Each landmark's side of the body: +1 left, -1 right, 0 midline (the nose, MediaPipe's one midline landmark).
SIDE = tuple(1 if "left" in n else -1 if "right" in n else 0 for n in LANDMARK_NAMES)

# MediaPipe's POSE_CONNECTIONS (what the page draws; the graph model's edges), as index pairs (a test compares them).
BONES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
    (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 23),
    (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31),
    (28, 32),
)  # fmt: skip

# A kinematic tree over the landmarks (each one's parent, towards the hips; the left hip is the root
# and its own parent), for bone vectors = landmark - parent. Mirror-symmetric except at the root and
# the nose, which hangs off the left shoulder's side of the midline (MediaPipe has no neck point).
PARENT = (
    11, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 23, 24, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16, 23, 23, 23, 24, 25, 26, 27, 28,
    27, 28,
)  # fmt: skip

# Body segments, each named by the bones that end at its landmarks (bone = landmark - PARENT[landmark]).
SEGMENTS = {
    "head": tuple(range(0, 11)), "hips": (24,), "torso": (11, 12), "upper arms": (13, 14), "forearms": (15, 16),
    "hands": tuple(range(17, 23)), "thighs": (25, 26), "shins": (27, 28), "feet": tuple(range(29, 33)),
}  # fmt: skip

# Angle at the middle landmark of each triple, in (left, right) pairs: elbows, shoulders, hips,
# knees, ankles. Models use their cosines; the page's rep counter reads some of them.
JOINTS = {
    "left_elbow": (11, 13, 15), "right_elbow": (12, 14, 16), "left_shoulder": (13, 11, 23), "right_shoulder": (14, 12, 24),
    "left_hip": (11, 23, 25), "right_hip": (12, 24, 26), "left_knee": (23, 25, 27), "right_knee": (24, 26, 28),
    "left_ankle": (25, 27, 31), "right_ankle": (26, 28, 32),
}  # fmt: skip

# Whole parts that can be hidden together (out of frame, behind a bench or a wall).
BODY_PARTS = {
    "face": tuple(range(0, 11)), "left arm": (11, 13, 15, 17, 19, 21), "right arm": (12, 14, 16, 18, 20, 22),
    "left leg": (25, 27, 29, 31), "right leg": (26, 28, 30, 32), "both arms": tuple(range(13, 23)),
}  # fmt: skip


def has_person(image: np.ndarray) -> np.ndarray:
    """``[T]`` bool of image landmarks ``[T, 33, 4]``: frames with a person. A frame without one is a NaN row,
    so its first number tells."""
    return ~np.isnan(image[:, 0, 0])


def skeleton_dict() -> dict:
    """Everything above as JSON-ready data (what the page's generated module holds)."""
    return {
        "names": list(LANDMARK_NAMES), "count": NUM_LANDMARKS, "mirror": list(MIRROR), "bones": [list(b) for b in BONES],
        "parent": list(PARENT), "joints": {k: list(v) for k, v in JOINTS.items()},
        "body_parts": {k: list(v) for k, v in BODY_PARTS.items()}, "segments": {k: list(v) for k, v in SEGMENTS.items()},
    }  # fmt: skip
