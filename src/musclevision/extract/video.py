"""Decode a video into RGB frames with ``decord``, in bounded chunks, and spot truncated files.

decord builds its frame index from whatever it can demux, so a truncated file simply looks
shorter. The container's own declared frame count (read through OpenCV, which MediaPipe
already depends on) is the independent witness we compare against.
"""

from __future__ import annotations

import struct
import time
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


def _header(path: Path) -> tuple[float, float] | None:
    """``(frame count, frame rate)`` as the container's header declares them (nothing decoded); None if unopenable."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else None
    finally:
        cap.release()


def declared_frame_count(path: Path) -> int:
    header = _header(path)
    return int(header[0]) if header else -1


def declared_seconds(path: Path) -> float | None:
    """How long the container says the video lasts (frame count / frame rate from its header, nothing decoded), or
    None when it does not say or cannot be opened."""
    header = _header(path)
    return header[0] / header[1] if header and header[0] > 0 and header[1] > 0 else None


def open_video(path: Path):
    """Return ``(decord.VideoReader, VideoInfo)`` or raise a VideoError naming the file."""
    import decord

    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes); re-copy or re-download it")
    try:  # a text file can open, as some raw stream, and fail on its first frame: both are "not a video"
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        if len(reader) == 0:
            raise VideoError(f"{path}: the video has no decodable frames")
        height, width = reader[0].shape[:2]
        reader.seek(0)
    except VideoError:
        raise
    except Exception as exc:  # decord raises bare DECORDError/RuntimeError with ffmpeg text
        raise VideoError(
            f"{path}: not a readable video ({type(exc).__name__}: {str(exc).strip()[:200]}); "
            "check that it is a complete video file in a format ffmpeg can decode"
        ) from None
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


# -- when it was recorded ------------------------------------------------------------------------------
MP4_EPOCH_S = 2082844800  # seconds from 1904-01-01 (the MP4/QuickTime epoch) to 1970-01-01
MKV_EPOCH_S = 978307200  # seconds from 1970-01-01 to 2001-01-01 (Matroska's DateUTC counts nanoseconds from there)
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def recording_time_ms(path: Path) -> float | None:
    """The time a video file says it was made (epoch ms, UTC): an MP4/MOV movie header's (``moov/mvhd``) creation
    time, or a Matroska/WebM segment's ``Info/DateUTC``. Recorders differ: many write when recording started, some
    (Android's) when it stopped. None when the file does not say (AVI, a browser's WebM recording, no or a zero time)
    or cannot be read: callers then leave wall-clock times out rather than guess. Never raises."""
    try:
        with open(path, "rb") as f:
            end = Path(path).stat().st_size
            created_s = _mkv_time(f, end) if f.read(4) == EBML_MAGIC else _mvhd_time(f, 0, end, inside_moov=False)
    except (OSError, struct.error, ValueError, IndexError):
        return None
    plausible = created_s is not None and 86400 < created_s < time.time() + 86400  # unset reads as an epoch; no future
    return created_s * 1000.0 if plausible else None


def _mvhd_time(f, start: int, end: int, inside_moov: bool) -> float | None:
    """Walk the boxes in [start, end): into ``moov``, then read ``mvhd``'s creation time."""
    pos = start
    for _ in range(1000):  # a real file has a handful of top-level boxes; a broken one must not loop for long
        if pos + 8 > end:
            return None
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:  # 64-bit size follows
            (size,) = struct.unpack(">Q", f.read(8))
            header = 16
        elif size == 0:  # to the end of the enclosing box
            size = end - pos
        if size < header:
            return None
        if kind == b"moov" and not inside_moov:
            return _mvhd_time(f, pos + header, min(pos + size, end), inside_moov=True)
        if kind == b"mvhd" and inside_moov:
            (version,) = struct.unpack(">B", f.read(1))
            f.read(3)  # flags
            return struct.unpack(">Q" if version == 1 else ">I", f.read(8 if version == 1 else 4))[0] - MP4_EPOCH_S
        pos += size
    return None


def _ebml_number(f, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length number at the file position: (value, its length in bytes). Element ids keep their
    length marker bit; sizes drop it (all value bits set: unknown size, returned as -1)."""
    first = f.read(1)[0]
    length = 9 - first.bit_length()  # the marker is the first set bit
    if not 1 <= length <= 8:
        raise ValueError("not an EBML number")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in f.read(length - 1):
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = -1
    return value, length


def _mkv_time(f, end: int) -> float | None:
    """Seconds since 1970 of the first Segment's Info/DateUTC, read before the first Cluster (where Info sits)."""
    segment, info, date_utc, cluster = 0x18538067, 0x1549A966, 0x4461, 0x1F43B675
    pos, limit = 0, end
    for _ in range(1000):
        if pos + 2 > limit:
            return None
        f.seek(pos)
        element, id_len = _ebml_number(f, keep_marker=True)
        size, size_len = _ebml_number(f, keep_marker=False)
        data = pos + id_len + size_len
        if element == cluster:
            return None
        if element in (segment, info):  # go inside: its children follow
            pos, limit = data, end if size < 0 else min(data + size, end)
            continue
        if element == date_utc and size == 8:
            (nanoseconds,) = struct.unpack(">q", f.read(8))
            return nanoseconds / 1e9 + MKV_EPOCH_S
        if size < 0:
            return None
        pos = data + size
    return None
