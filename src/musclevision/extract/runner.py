"""Videos -> keypoint cache: discover, skip what is done, run the pool, write as results arrive."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from musclevision.extract.cache import CacheWriteError, ClipRecord, KeypointCache
from musclevision.extract.discover import find_videos, misplaced_videos, parse_shard, take_shard
from musclevision.extract.landmarker import ConfigError, PoseSettings
from musclevision.extract.pool import ExtractorPool, default_workers


@dataclass
class ExtractSummary:
    cache_dir: Path
    selected: int = 0  # videos this run was asked about (after classes/shard/limit)
    skipped: int = 0  # already finished in the cache
    done: list[ClipRecord] = field(default_factory=list)  # finished by this run
    earlier_failures: list[ClipRecord] = field(default_factory=list)  # failed before, not retried
    earlier_partial: list[ClipRecord] = field(default_factory=list)  # only partly usable before (finished: not redone)
    by_others: int = 0  # finished meanwhile by another extractor working on the same cache
    damaged: list[str] = field(default_factory=list)  # ids whose cached clip was damaged: redone by this run
    misplaced: list[str] = field(default_factory=list)  # video files not at <class>/<file>: skipped
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
    videos=None,
    on_start=None,
    on_result=None,
    on_other=None,
) -> ExtractSummary:
    """Make sure every video under ``video_root`` (or only the ids in ``videos``) has an intact entry in
    the cache at ``cache_dir``: missing and damaged entries are (re)done, finished ones skipped.

    ``on_start(todo_sources)``, ``on_result(record)`` and ``on_other(source, owner)`` (another extractor
    on this cache holds that video, ``owner`` None: it finished it) let a caller draw progress.
    Raises ConfigError (bad option, before any work), FileNotFoundError (no video_root), CacheError
    (cache made with other settings; CacheWriteError: it cannot be written, what was done is kept)
    or ExtractorFatalError (model cannot load).
    """
    workers, (index, count) = check_options(workers, shard, limit)
    if classes is not None and (isinstance(classes, str) or not all(isinstance(c, str) for c in classes)):
        raise ConfigError(f"classes={classes!r} must be a list of class folder names, e.g. [PushUps, Lunges]")
    if videos is not None and (isinstance(videos, str) or not all(isinstance(v, str) for v in videos)):
        raise ConfigError(f"videos={videos!r} must be a list of video ids, e.g. [PushUps/v_PushUps_g16_c04]")
    if rebuild and count > 1:
        raise ConfigError("rebuild=true with shard=i/n>1 would let one shard delete the others' work; rebuild once unsharded")
    settings = PoseSettings.resolve(**(pose or {}))
    root = Path(video_root)
    found = find_videos(root, classes=classes)

    def there() -> str:  # for a message about classes: the class folders that do exist
        folders = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        return f" (its class folders: {', '.join(folders)})" if folders else ""

    if not found:
        inner = [p for p in sorted(root.iterdir()) if p.is_dir() and find_videos(p, classes=classes)] if root.is_dir() else []
        raise ConfigError(
            f"video_root={video_root} holds no videos of the expected layout <root>/<ClassName>/<video>"
            + (f" for classes {list(classes)}{there()}" if classes else "")
            + (f"; did you mean video_root={inner[0]}?" if inner else "")
        )
    if videos is not None:
        unknown = sorted(set(videos) - {s.video_id for s in found})
        if unknown:
            raise ConfigError(f"videos= names ids with no video under {video_root}: {unknown} (ids are <Class>/<file stem>)")
        found = [s for s in found if s.video_id in set(videos)]
    sources = take_shard(found, index, count)
    if classes is not None:
        missing = sorted(set(classes) - {s.label for s in sources})
        if missing and count == 1:
            raise ConfigError(f"classes={list(classes)} names folders with no videos under {video_root}: {missing}{there()}")
    sources = sources[:limit] if limit else sources
    cache = KeypointCache.open_for_writing(cache_dir, settings.cache_key(), rebuild=rebuild)

    summary = ExtractSummary(cache.path, selected=len(sources), workers=workers)
    if classes is None and videos is None:  # every video was asked for: say which files the layout leaves out
        summary.misplaced = misplaced_videos(root)
    todo = []
    for source in sources:
        if cache.is_finished(source.video_id, source.size, source.mtime_ns, retry_failed, source.path):
            summary.skipped += 1
            record = cache.records()[source.video_id]
            if record.status == "failed":
                summary.earlier_failures.append(record)
            elif record.status == "partial":
                summary.earlier_partial.append(record)
        else:
            todo.append(source)
            record = cache.records().get(source.video_id)
            if record is not None and record.status != "failed" and record.size == source.size and cache.damage(record):
                summary.damaged.append(source.video_id)
    if todo:
        cache.check_writable(len(todo))  # a read-only or unwritable cache: say so now, not per video
    if on_start:
        on_start(todo)
    start = time.perf_counter()
    planned = {s.video_id: cache.records().get(s.video_id) for s in todo}
    claims = {}

    def take(source) -> str:
        """Claim a video right before extracting it, so that extractors sharing this cache split the work."""
        claim = cache.claim(source.video_id)
        if claim is None:
            if on_other:
                on_other(source, cache.claim_owner(source.video_id))
            return "busy"
        if cache.records().get(source.video_id) != planned[source.video_id]:  # another extractor finished it
            claim.release()
            summary.by_others += 1
            if on_other:
                on_other(source, None)
            return "done"
        claims[source.video_id] = claim
        return "mine"

    outcomes = ExtractorPool(settings, workers, log_dir=cache.path / "logs").run(todo, take=take)
    try:
        for outcome in outcomes:
            kp = outcome.keypoints
            try:
                record = cache.write(outcome.record, *((kp.image, kp.world, kp.timestamps_ms) if kp else ()))
            finally:
                claims.pop(outcome.record.video_id).release()
            summary.done.append(record)
            if on_result:
                on_result(record)
    except CacheWriteError as exc:  # a full disk: say what is safe
        kept = len(summary.done)
        raise CacheWriteError(f"{exc}. {kept} of the {len(todo)} videos to do were stored before it, and kept") from None
    finally:
        outcomes.close()  # stops the workers
        for claim in claims.values():
            claim.release()
        cache.tidy_claims()
    summary.seconds = time.perf_counter() - start
    return summary
