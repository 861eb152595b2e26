"""The one BlazePose skeleton every stage uses: landmark layout (``skeleton``) and the geometry on it
(``geometry``: torch, inside the model graph). The page gets the same data from a generated ES module
(``musclevision.web.assets`` writes ``static/js/generated/contract.js`` at set-up; a test checks parity)."""

from musclevision.pose.skeleton import (
    BODY_PARTS,
    BONES,
    JOINTS,
    LANDMARK_NAMES,
    LEFT_HIP,
    LEFT_SHOULDER,
    MIRROR,
    NUM_LANDMARKS,
    PARENT,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    SEGMENTS,
    SIDE,
    landmark,
)

__all__ = [
    "BODY_PARTS", "BONES", "JOINTS", "LANDMARK_NAMES", "LEFT_HIP", "LEFT_SHOULDER", "MIRROR", "NUM_LANDMARKS", "PARENT",
    "RIGHT_HIP", "RIGHT_SHOULDER", "SEGMENTS", "SIDE", "landmark",
]  # fmt: skip
