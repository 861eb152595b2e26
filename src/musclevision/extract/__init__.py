"""Stage 1: videos -> BlazePose keypoint sequences in a cache. Entry point: :func:`extract_videos`."""

from musclevision.extract.cache import CachedClip, CacheError, ClipRecord, KeypointCache
from musclevision.extract.landmarker import ConfigError, PoseSettings
from musclevision.extract.progress import extract_with_progress
from musclevision.extract.runner import ExtractSummary, extract_videos

__all__ = [
    "CachedClip", "CacheError", "ClipRecord", "ConfigError", "ExtractSummary", "KeypointCache", "PoseSettings",
    "extract_videos", "extract_with_progress",
]  # fmt: skip
