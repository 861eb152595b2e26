"""The one in-memory form of a keypoint sequence that every data source produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musclevision.pose.skeleton import has_person


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
    # Frame indices where a counted repetition ends (back at rest), when known (synthetic clips); None = unknown.
    rep_ends: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return len(self.image)

    @property
    def has_person(self) -> np.ndarray:
        """[T] bool: frames where a person was found."""
        return has_person(self.image)
