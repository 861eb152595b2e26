"""Where clips come from: the keypoint cache of a video folder, or the synthetic generator.

A source has ``prepare(classes)`` (slow, once: extract what the cache lacks) and
``load(classes) -> list[ClipData]`` (fast, every process).
"""

from __future__ import annotations

import logging
from pathlib import Path

from musclevision.data.clips import ClipData
from musclevision.extract import KeypointCache, extract_with_progress
from musclevision.extract.cache import matching_options, settings_diff
from musclevision.extract.discover import find_videos
from musclevision.extract.landmarker import ConfigError, PoseSettings
from musclevision.extract.video import declared_seconds

log = logging.getLogger(__name__)


def source_kind(source) -> str:
    """What a data source config (``data.source``) gives, as its class declares it (``kind``): "real" or "synthetic"."""
    from hydra.utils import get_class

    target = (source or {}).get("_target_")
    return getattr(get_class(target), "kind", "real") if target else "real"


class VideoCacheSource:
    """Keypoints of the videos under ``video_root``, cached in ``cache_dir`` by the extractor pool."""

    kind = "real"  # recorded in model cards: what a model learned from

    def __init__(self, cache_dir: str, video_root: str | None = None, pose: dict | None = None,
                 workers: int | None = None):  # fmt: skip
        self.cache_dir, self.video_root = Path(cache_dir), Path(video_root) if video_root else None
        self.pose, self.workers = dict(pose or {}), workers

    def missing(self, classes: list[str]) -> int:
        """How many videos of ``classes`` the cache does not cover yet (0 when there is no video folder)."""
        if self.video_root is None or not self.video_root.is_dir():
            return 0
        sources = find_videos(self.video_root, classes=classes)
        if not (self.cache_dir / "cache.json").is_file():
            return len(sources)
        cache = KeypointCache(self.cache_dir)
        return sum(not cache.is_finished(s.video_id, s.size, s.mtime_ns, path=s.path) for s in sources)

    def longest_seconds(self, classes: list[str]) -> float | None:
        """The longest video's duration from the file headers when videos are left to extract (so a window no clip
        can fill is refused before minutes of extraction); None when there is nothing to extract (the cache says)."""
        if not self.missing(classes):
            return None
        durations = [declared_seconds(s.path) for s in find_videos(self.video_root, classes=classes)]
        return max((d for d in durations if d is not None), default=None)

    def check_settings(self) -> None:
        """Refuse a cache made with other pose settings, in training's own terms, before anything is extracted."""
        if not self.pose:
            return
        try:
            PoseSettings(**self.pose)  # a bad value named as the user writes it, before anything starts
        except ConfigError as exc:
            raise PoseSettings.named(exc, "data.source.pose.") from None
        if not (self.cache_dir / "cache.json").is_file():
            return
        cached, expected = KeypointCache(self.cache_dir).settings, PoseSettings.resolve(**self.pose).cache_key()
        if cached != expected:
            same = matching_options(cached, expected, prefix="data.source.pose.")
            ask = f"ask for the cache's settings ({same})" if same else "set data.source.pose to the cache's settings"
            raise ValueError(
                f"{self.cache_dir} was extracted with other pose settings ({settings_diff(cached, expected)}); "
                f"point data.source.cache_dir elsewhere, {ask}, or re-extract it "
                "(musclevision-extract cache_dir=... rebuild=true)"
            )

    def prepare(self, classes: list[str]) -> None:
        self.check_settings()
        todo = self.missing(classes)
        if todo:
            log.info("extracting keypoints of %d videos from %s into %s (to train on the cache as it is instead: "
                     "data.source.video_root=null)", todo, self.video_root, self.cache_dir)  # fmt: skip
            summary = extract_with_progress(self.video_root, self.cache_dir, pose=self.pose, classes=classes,
                                            workers=self.workers)  # fmt: skip
            if summary.failures:
                n = len(summary.failures)
                log.warning("%d video%s could not be used: see %s/manifest.jsonl", n, "" if n == 1 else "s", self.cache_dir)
        elif self.video_root is not None and not self.video_root.is_dir():
            log.warning("video_root %s not found: using the cache %s as it is", self.video_root, self.cache_dir)

    def load(self, classes: list[str], require_all: bool = True) -> list[ClipData]:
        """The cached clips of ``classes``; every class must have some unless ``require_all`` is False (scoring a
        model on a cache of some of its classes: the missing ones are named in a warning)."""
        self.check_settings()
        cache = KeypointCache(self.cache_dir)
        records = cache.videos(labels=classes)
        found = {r.label for r in records}
        # every class the cache holds, asked for or not (read only when a message needs it)
        held = {r.label for r in cache.videos()} if not require_all or set(classes) - found else found
        if not require_all and (unknown := sorted(held - set(classes))):
            log.warning("%s also holds clips of %s, which the model does not know: not scored", self.cache_dir, unknown)
        if set(classes) - found and not require_all and found:
            log.warning("%s has no clips of %s: scoring the clips of %s", self.cache_dir, sorted(set(classes) - found),
                        sorted(found))  # fmt: skip
        elif set(classes) - found:
            names = sorted(held)
            hint = (f"to train on its classes: 'data.classes=[{','.join(names)}]'" if names and not found
                    else "check data.classes or extract those videos")  # fmt: skip
            raise ValueError(f"no clips of {sorted(set(classes) - found)} in {self.cache_dir} (it has "
                             f"{', '.join(names) or 'none'}); {hint}")  # fmt: skip
        clips = []
        for record in records:
            clip = cache.load(record.video_id)
            clips.append(ClipData(record.video_id, record.label, record.group, clip.image, clip.world, record.fps,
                                  record.width, record.height))  # fmt: skip
        return clips


class SyntheticSource:
    """Generated BlazePose-format exercise sequences: runs anywhere in seconds, no video needed."""

    kind = "synthetic"  # model cards and the page say so: for trying the pipeline, not for real use

    def __init__(self, groups: int = 12, clips_per_group: int = 3, seed: int = 0, **options):
        self.groups, self.clips_per_group, self.seed, self.options = groups, clips_per_group, seed, options

    def prepare(self, classes: list[str]) -> None:
        pass

    def load(self, classes: list[str], require_all: bool = True) -> list[ClipData]:
        from musclevision.data.synthetic import synthesize_dataset

        return synthesize_dataset(classes, groups=self.groups, clips_per_group=self.clips_per_group, seed=self.seed,
                                  **self.options)  # fmt: skip
