"""Decode a video into RGB frames with ``decord``, in bounded chunks, and spot truncated files.

decord builds its frame index from whatever it can demux, so a truncated file simply looks
shorter. The container's own declared frame count (read through OpenCV, which MediaPipe
already depends on) is the independent witness we compare against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK_BYTES = 64 << 20  # decode at most ~64 MB of frames at a time, whatever the resolution


class VideoError(RuntimeError):
    """A video that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # what decord can decode
    declared_frames: int  # what the container header claims (-1 when it does not say)
    fps: float
    width: int
    height: int

    @property
    def truncated(self) -> bool:
        # Containers without a frame count get an estimate from duration x fps, so allow slack.
        return self.declared_frames > 0 and self.declared_frames - self.frames > max(2, 0.01 * self.declared_frames)


def declared_frame_count(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
    finally:
        cap.release()


def open_video(path: Path):
    """Return ``(decord.VideoReader, VideoInfo)`` or raise a VideoError naming the file."""
    import decord

    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes); re-copy or re-download it")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises bare DECORDError/RuntimeError with ffmpeg text
        raise VideoError(
            f"{path}: not a readable video ({type(exc).__name__}: {str(exc).strip()[:200]}); "
            "check that it is a complete video file in a format ffmpeg can decode"
        ) from None
    if len(reader) == 0:
        raise VideoError(f"{path}: the video has no decodable frames")
    height, width = reader[0].shape[:2]
    reader.seek(0)
    fps = float(reader.get_avg_fps())
    if not np.isfinite(fps) or fps <= 0:
        raise VideoError(f"{path}: the container reports no usable frame rate ({fps})")
    return reader, VideoInfo(len(reader), declared_frame_count(path), fps, width, height)


def iter_frames(reader, info: VideoInfo) -> Iterator[np.ndarray]:
    """Yield contiguous uint8 RGB frames ``[H, W, 3]`` in order, decoding in bounded chunks.

    A decoding error part-way raises VideoError after the good frames were yielded, so the
    caller can keep them and record the video as partial.
    """
    chunk = max(1, CHUNK_BYTES // (info.width * info.height * 3))
    for start in range(0, info.frames, chunk):
        indices = list(range(start, min(start + chunk, info.frames)))
        try:
            batch = reader.get_batch(indices).asnumpy()
        except Exception as exc:
            raise VideoError(f"decoding failed at frame {start} ({type(exc).__name__}: {str(exc).strip()[:200]})") from None
        yield from batch
