"""The one in-memory form of a keypoint sequence that every data source produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MediaPipe BlazePose landmark order (33 points).
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_LANDMARKS = len(LANDMARK_NAMES)
# Index of each landmark's mirror twin (left <-> right, wherever the side is in the name:
# "left_eye" and "mouth_left"); the nose maps to itself.
MIRROR = tuple(
    LANDMARK_NAMES.index(n.replace("left", "@").replace("right", "left").replace("@", "right")) for n in LANDMARK_NAMES
)


@dataclass
class ClipData:
    video_id: str
    label: str
    group: str  # clips sharing a group (same person/scene) never straddle a split
    image: np.ndarray  # [T, 33, 4] float32: x, y normalized to width/height, z, visibility; NaN rows = no person
    world: np.ndarray  # [T, 33, 3] float32 metres, hip-centred; NaN rows = no person
    fps: float
    width: int
    height: int

    @property
    def frames(self) -> int:
        return len(self.image)

    @property
    def detected(self) -> np.ndarray:
        """[T] bool: frames where a person was found."""
        return ~np.isnan(self.image[:, 0, 0])
