"""Quarter-turn rotations of a frame, and the exact inverse for the landmarks found in it.

BlazePose's detector finds upright people; a body lying across the frame (bench press, a
push-up filmed from the side) is often found once the frame is turned by 90° or 270°. The
landmarks are then mapped back to the original frame:

- image x, y (normalized to the rotated frame's width/height): the inverse quarter turn;
- image z (MediaPipe scales it like x, i.e. by the frame *width*): the rotated frame's width is
  the original height, so z is rescaled by ``height / width`` of the original for 90° and 270°;
- world x, y, z (metres, hip-centred, axes along the image's x right / y down): the world frame
  turns with the image about the camera axis, so x, y turn back and z is unchanged.

Degrees are clockwise, as the frame is seen.

**Zoom-out** (``zoom``): a body so close that it fills or overflows the frame (a bench-press
close-up) is missed by the detector, which is trained on whole people with room around them. The
frame is then drawn, pixel for pixel, in the middle of a black canvas ``zoom`` times as large
(``pad_frame``); landmarks found there map back by the inverse shift and scale (``unpad_image``):
x, y exactly, z (in units of the padded width) by ``padded width / width``; world landmarks
(metres, hip-centred) do not depend on where the body sits in the image and stay as they are.

The page (``web/static/js/pose.js``) does the same.
"""

from __future__ import annotations

import numpy as np


def rotate_frame(frame: np.ndarray, degrees: int) -> np.ndarray:
    """``frame [H, W, C]`` turned ``degrees`` clockwise (exact pixel copy, contiguous)."""
    if degrees == 0:
        return frame
    return np.ascontiguousarray(np.rot90(frame, k=-(degrees // 90)))


def unrotate_image(image: np.ndarray, degrees: int, width: int, height: int) -> np.ndarray:
    """Landmarks ``[..., 4]`` (x, y, z, visibility) found in the frame turned by ``degrees``, in the
    coordinates of the original ``width x height`` frame. Returns a new array."""
    out = np.array(image, dtype=np.float64)  # computed in float64, rounded once to float32 (as the page does)
    x, y = out[..., 0].copy(), out[..., 1].copy()
    if degrees == 90:  # original (u, v) -> rotated (1 - v, u)
        out[..., 0], out[..., 1] = y, 1.0 - x
    elif degrees == 180:
        out[..., 0], out[..., 1] = 1.0 - x, 1.0 - y
    elif degrees == 270:  # original (u, v) -> rotated (v, 1 - u)
        out[..., 0], out[..., 1] = 1.0 - y, x
    if degrees in (90, 270):
        out[..., 2] *= height / width  # z was in units of the rotated width (= original height)
    return out.astype(np.float32)


def unrotate_world(world: np.ndarray, degrees: int) -> np.ndarray:
    """World landmarks ``[..., 3]`` from the frame turned by ``degrees``, in the original camera's axes."""
    out = np.array(world, dtype=np.float32)
    x, y = out[..., 0].copy(), out[..., 1].copy()
    if degrees == 90:
        out[..., 0], out[..., 1] = y, -x
    elif degrees == 180:
        out[..., 0], out[..., 1] = -x, -y
    elif degrees == 270:
        out[..., 0], out[..., 1] = -y, x
    return out


def padded_size(width: int, height: int, zoom: float) -> tuple[int, int, int, int]:
    """``(padded width, padded height, x offset, y offset)`` of a ``width x height`` frame zoomed out by ``zoom``
    (whole pixels, the frame centred; the page computes the same)."""
    pw, ph = int(np.floor(width * zoom + 0.5)), int(np.floor(height * zoom + 0.5))  # halves up, as JS Math.round
    return pw, ph, (pw - width) // 2, (ph - height) // 2


def pad_frame(frame: np.ndarray, zoom: float) -> np.ndarray:
    """``frame [H, W, C]`` in the middle of a black canvas ``zoom`` times as large (zoom 1: the frame itself)."""
    if zoom == 1:
        return frame
    h, w = frame.shape[:2]
    pw, ph, x0, y0 = padded_size(w, h, zoom)
    out = np.zeros((ph, pw, *frame.shape[2:]), frame.dtype)
    out[y0 : y0 + h, x0 : x0 + w] = frame
    return out


def unpad_image(image: np.ndarray, zoom: float, width: int, height: int) -> np.ndarray:
    """Landmarks ``[..., 4]`` found in a ``width x height`` frame zoomed out by ``zoom``, in that frame's
    coordinates: a new float64 array, rounded once by ``unrotate_image`` after it (as the page does)."""
    out = np.array(image, dtype=np.float64)
    if zoom != 1:
        pw, ph, x0, y0 = padded_size(width, height, zoom)
        out[..., 0] = (out[..., 0] * pw - x0) / width
        out[..., 1] = (out[..., 1] * ph - y0) / height
        out[..., 2] *= pw / width  # z was in units of the padded width
    return out
