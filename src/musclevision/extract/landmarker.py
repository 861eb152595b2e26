"""Run MediaPipe's PoseLandmarker over one video: frames in, a keypoint sequence out.

One landmarker per video: VIDEO mode needs increasing timestamps and carries tracking state
from frame to frame, so reusing one across videos would leak the previous clip's pose into
the next clip's first frames and make results depend on processing order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musclevision.extract.pose_bundle import VARIANTS, ensure_bundle, sha256_file
from musclevision.extract.video import VideoError, iter_frames, open_video
from musclevision.pose.skeleton import NUM_LANDMARKS


class ConfigError(ValueError):
    """A bad option value; raised before any work starts, naming the option."""


@dataclass(frozen=True)
class PoseSettings:
    """Everything that changes the keypoints: the cache is keyed by these."""

    model: str = "full"
    min_pose_detection_confidence: float = 0.5
    min_pose_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    bundle_sha256: str = field(default="", compare=True)

    def __post_init__(self):
        if self.model not in VARIANTS:
            raise ConfigError(f"model={self.model!r} is not a pose model variant; use one of {', '.join(VARIANTS)}")
        for name in ("min_pose_detection_confidence", "min_pose_presence_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value!r} must be a number between 0 and 1")

    @classmethod
    def resolve(cls, **options) -> PoseSettings:
        """Settings with the bundle hash filled in (building the bundle if needed)."""
        settings = cls(**options)
        return cls(**{**asdict(settings), "bundle_sha256": sha256_file(ensure_bundle(settings.model))})

    def cache_key(self) -> dict:
        import mediapipe

        return {"mediapipe": mediapipe.__version__, "num_poses": 1, **asdict(self)}


@dataclass
class VideoKeypoints:
    image: np.ndarray  # [T, 33, 4] x, y (normalized), z, visibility; NaN rows = no person
    world: np.ndarray  # [T, 33, 3] metres, hip-centred; NaN rows = no person
    timestamps_ms: np.ndarray  # [T] int64, what MediaPipe was given
    fps: float
    width: int
    height: int
    declared_frames: int
    error: str | None = None  # set when decoding stopped early (the frames before are kept)

    @property
    def frames(self) -> int:
        return len(self.image)

    @property
    def detected(self) -> int:
        return int((~np.isnan(self.image[:, 0, 0])).sum())


def create_landmarker(settings: PoseSettings):
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(ensure_bundle(settings.model))),
        running_mode=vision.RunningMode.VIDEO,
        num_poses=1,
        min_pose_detection_confidence=settings.min_pose_detection_confidence,
        min_pose_presence_confidence=settings.min_pose_presence_confidence,
        min_tracking_confidence=settings.min_tracking_confidence,
    )
    return vision.PoseLandmarker.create_from_options(options)


def timestamps_ms(n: int, fps: float) -> np.ndarray:
    """Millisecond timestamps from the real frame rate, kept strictly increasing (MediaPipe requires it)."""
    index = np.arange(n, dtype=np.int64)
    ts = np.round(index * 1000.0 / fps).astype(np.int64)
    return np.maximum.accumulate(ts - index) + index  # no-op below 1000 fps


def detect(landmarker, frame: np.ndarray, timestamp_ms: int):
    """Landmarks of one RGB frame as ``(image [33, 4], world [33, 3])``, or None when no person."""
    import mediapipe as mp

    result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=frame), int(timestamp_ms))
    if not result.pose_landmarks:
        return None
    image = [(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks[0]]
    world = [(p.x, p.y, p.z) for p in result.pose_world_landmarks[0]]
    return image, world


def extract_video(path: Path, settings: PoseSettings) -> VideoKeypoints:
    """Keypoints for every decodable frame of ``path``; raises VideoError for unusable files.

    A file that stops decoding part-way keeps the frames before the damage and says so in
    ``error``; so does one whose container declares more frames than exist (truncated copy).
    """
    reader, info = open_video(path)
    stamps = timestamps_ms(info.frames, info.fps)
    image = np.full((info.frames, NUM_LANDMARKS, 4), np.nan, np.float32)
    world = np.full((info.frames, NUM_LANDMARKS, 3), np.nan, np.float32)
    error, done = None, 0
    with create_landmarker(settings) as landmarker:
        try:
            for frame in iter_frames(reader, info):
                found = detect(landmarker, frame, stamps[done])
                if found is not None:
                    image[done], world[done] = found
                done += 1
        except VideoError as exc:
            error = str(exc)
    if done == 0:
        raise VideoError(f"{path}: no frame could be decoded ({error})")
    if error is None and info.truncated:
        error = (
            f"truncated: the container declares {info.declared_frames} frames but only {info.frames} decode; "
            "the frames that exist were kept, re-copy the file for the rest"
        )
    return VideoKeypoints(
        image[:done], world[:done], stamps[:done], info.fps, info.width, info.height, info.declared_frames, error
    )
