"""Videos -> keypoint cache: discover, skip what is done, run the pool, write as results arrive."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from musclevision.extract.cache import ClipRecord, KeypointCache
from musclevision.extract.landmarker import ConfigError, PoseSettings
from musclevision.extract.pool import ExtractorPool, default_workers
from musclevision.extract.sources import find_videos, parse_shard, take_shard


@dataclass
class ExtractSummary:
    cache_dir: Path
    selected: int = 0  # videos this run was asked about (after classes/shard/limit)
    skipped: int = 0  # already finished in the cache
    done: list[ClipRecord] = field(default_factory=list)  # finished by this run
    earlier_failures: list[ClipRecord] = field(default_factory=list)  # failed before, not retried
    seconds: float = 0.0
    workers: int = 0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.done)

    @property
    def frames(self) -> int:
        return sum(r.frames_decoded for r in self.done)

    @property
    def detected(self) -> int:
        return sum(r.frames_detected for r in self.done)

    @property
    def failures(self) -> list[ClipRecord]:
        return [r for r in self.done if r.status == "failed"] + self.earlier_failures


def check_options(workers, shard, limit) -> tuple[int, tuple[int, int]]:
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} must be a whole number >= 1 (or null for one per CPU)")
    try:
        shard_index = parse_shard(shard)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit={limit!r} must be a whole number >= 1 (or null for all videos)")
    return workers, shard_index


def extract_videos(
    video_root,
    cache_dir,
    pose: dict | None = None,
    classes=None,
    workers: int | None = None,
    shard: str = "0/1",
    limit: int | None = None,
    rebuild: bool = False,
    retry_failed: bool = False,
    on_start=None,
    on_result=None,
) -> ExtractSummary:
    """Make sure every video under ``video_root`` has an entry in the cache at ``cache_dir``.

    ``on_start(todo_sources)`` and ``on_result(record)`` let a caller draw progress.
    Raises ConfigError (bad option, before any work), FileNotFoundError (no video_root),
    CacheError (cache made with other settings) or ExtractorFatalError (model cannot load).
    """
    workers, (index, count) = check_options(workers, shard, limit)
    if classes is not None and (isinstance(classes, str) or not all(isinstance(c, str) for c in classes)):
        raise ConfigError(f"classes={classes!r} must be a list of class folder names, e.g. [PushUps, Lunges]")
    if rebuild and count > 1:
        raise ConfigError("rebuild=true with shard=i/n>1 would let one shard delete the others' work; rebuild once unsharded")
    settings = PoseSettings.resolve(**(pose or {}))
    found = find_videos(Path(video_root), classes=classes)
    if not found:
        raise ConfigError(
            f"video_root={video_root} holds no videos of the expected layout <root>/<ClassName>/<video>"
            + (f" for classes {list(classes)}" if classes else "")
        )
    sources = take_shard(found, index, count)
    if classes is not None:
        missing = sorted(set(classes) - {s.label for s in sources})
        if missing and count == 1:
            raise ConfigError(f"classes={list(classes)} names folders with no videos under {video_root}: {missing}")
    sources = sources[:limit] if limit else sources
    cache = KeypointCache.open_for_writing(cache_dir, settings.cache_key(), rebuild=rebuild)

    summary = ExtractSummary(cache.path, selected=len(sources), workers=workers)
    todo = []
    for source in sources:
        if cache.is_finished(source.video_id, source.size, source.mtime_ns, retry_failed, source.path):
            summary.skipped += 1
            record = cache.records()[source.video_id]
            if record.status == "failed":
                summary.earlier_failures.append(record)
        else:
            todo.append(source)
    if on_start:
        on_start(todo)
    start = time.perf_counter()
    pool = ExtractorPool(settings, workers, log_dir=cache.path / "logs")
    for outcome in pool.run(todo):
        kp = outcome.keypoints
        if kp is None:
            cache.write(outcome.record)
        else:
            cache.write(outcome.record, kp.image, kp.world, kp.timestamps_ms)
        summary.done.append(outcome.record)
        if on_result:
            on_result(outcome.record)
    summary.seconds = time.perf_counter() - start
    return summary
