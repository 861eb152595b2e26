"""A pool of worker processes, each landmarking whole videos; results stream back as they finish.

- The largest files are handed out first (file size standing in for length) and at most
  ``2 x workers`` are in flight, so the pool stays busy to the end and memory holds only a
  few clips, never the dataset.
- MediaPipe/LiteRT/ffmpeg write their chatter straight to file descriptor 2; workers point
  fds 1 and 2 at a log file so the terminal shows progress, while every real error still
  comes back as the video's recorded reason.
- ``take(source)`` (the runner's claim on the cache) is asked right before a video is handed
  out: "mine" runs it, "done" drops it (another extractor finished it), "busy" sets it aside
  (another extractor is on it) and offers it again once the rest is done, until it is decided.
- A worker that dies (a decoder segfault on a damaged file) breaks the whole executor. The
  videos that were in flight are then re-run one at a time in a fresh pool: the guilty one
  (it crashes again) is recorded as failed, the innocent ones complete, the batch goes on.
- Workers exit by themselves when the main process dies (``kill -9`` of it alone, the OOM
  killer) instead of idling forever with a model in memory.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from musclevision.extract.cache import ClipRecord, now_iso
from musclevision.extract.discover import VideoSource
from musclevision.extract.landmarker import PoseSettings, VideoKeypoints, create_landmarker, extract_video
from musclevision.extract.video import VideoError
from musclevision.paths import sha256_file


class ExtractorFatalError(RuntimeError):
    """Something wrong for every video (e.g. the pose model cannot load): stop, record nothing."""


@dataclass
class Outcome:
    record: ClipRecord
    keypoints: VideoKeypoints | None  # None when the video failed


def redirect_native_output(log_path: Path) -> None:
    """Send this process's fds 1 and 2 (where C++ libraries log) to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


_settings: PoseSettings | None = None


def _exit_with_parent(parent_pid: int) -> None:
    """Exit once the main process is gone. A pool worker otherwise waits for work forever when
    only the main process is killed (``kill -9 <pid>``, the OOM killer): its queue never closes."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _init_worker(settings: PoseSettings, log_dir: str | None, parent_pid: int | None = None) -> None:
    global _settings
    _settings = settings
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="exit-with-parent").start()
    if log_dir is not None:
        redirect_native_output(Path(log_dir) / "workers.log")


def make_record(
    source: VideoSource, status: str, error: str | None, keypoints: VideoKeypoints | None = None, seconds: float = 0.0
) -> ClipRecord:
    frames = keypoints.frames if keypoints else 0
    detected = keypoints.detected if keypoints else 0
    return ClipRecord(
        video_id=source.video_id,
        label=source.label,
        group=source.group,
        source=str(source.path),
        status=status,
        error=error,
        frames_declared=keypoints.declared_frames if keypoints else -1,
        frames_decoded=frames,
        frames_detected=detected,
        detection_rate=round(detected / frames, 4) if frames else 0.0,
        fps=keypoints.fps if keypoints else 0.0,
        width=keypoints.width if keypoints else 0,
        height=keypoints.height if keypoints else 0,
        sha256=sha256_file(source.path) if source.path.is_file() else "",
        size=source.size,
        mtime_ns=source.mtime_ns,
        seconds=round(seconds, 3),
        finished=now_iso(),
        orientations=keypoints.tracking.get("orientations") if keypoints else None,
        people=keypoints.tracking.get("people") if keypoints else None,
        landmarker_calls=keypoints.tracking.get("calls") if keypoints else None,
    )


def process_video(source: VideoSource) -> Outcome:
    """Worker entry: landmark one video and describe the result. Never raises for bad input."""
    start = time.perf_counter()
    try:
        keypoints = extract_video(source.path, _settings)
    except VideoError as exc:
        return Outcome(make_record(source, "failed", str(exc), seconds=time.perf_counter() - start), None)
    except Exception as exc:  # anything else is still this file's problem, not the batch's
        error = f"{type(exc).__name__}: {exc}"
        return Outcome(make_record(source, "failed", error, seconds=time.perf_counter() - start), None)
    seconds = time.perf_counter() - start
    if keypoints.detected == 0:
        error = f"no person detected in any of its {keypoints.frames} frames"
        if keypoints.error:  # truncated: say that first, it is the likelier cause
            error = f"{keypoints.error}; {error}"
        return Outcome(make_record(source, "failed", error, keypoints, seconds), None)
    status = "partial" if keypoints.error else "ok"
    return Outcome(make_record(source, status, keypoints.error, keypoints, seconds), keypoints)


def _check_landmarker() -> None:
    with create_landmarker(_settings):
        pass


class ExtractorPool:
    """``task`` is what a worker runs per video (a picklable top-level function, default
    :func:`process_video`); tests pass one that crashes on purpose to exercise the isolation."""

    def __init__(self, settings: PoseSettings, workers: int, log_dir: Path | None = None, task=process_video):
        self.settings = settings
        self.workers = max(1, int(workers))
        self.log_dir = str(log_dir) if log_dir is not None else None
        self.task = task

    def _executor(self, workers: int) -> ProcessPoolExecutor:
        # spawn: MediaPipe and decord hold threads; forking a process with threads is unsafe.
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.settings, self.log_dir, os.getpid()),
        )

    def run(self, sources: list[VideoSource], take=None, poll_s: float = 0.5) -> Iterator[Outcome]:
        """Yield one Outcome per source that ``take`` (default: all) gives this pool, in completion order."""
        if not sources:
            return
        pending = sorted(sources, key=lambda s: s.size, reverse=True)  # largest file first (file size stands in for length)
        held: list[VideoSource] = []  # another extractor is on these: offered again once the rest is done
        taken: set[str] = set()
        workers = min(self.workers, len(pending))
        executor = self._executor(workers)
        try:
            try:
                # One check per worker, submitted together: every process starts, imports MediaPipe and
                # loads the model at once, instead of the second one starting only after the first
                # finished its check (seconds of a 2-core machine standing half idle).
                for check in [executor.submit(_check_landmarker) for _ in range(workers)]:
                    check.result()
            except BrokenProcessPool as exc:
                raise ExtractorFatalError(f"the extractor worker died while loading the pose model: {exc}") from None
            except Exception as exc:
                raise ExtractorFatalError(f"the pose landmarker could not be created: {exc}") from None
            in_flight: dict[Future, VideoSource] = {}
            while pending or in_flight or held:
                if not pending and not in_flight:  # only videos others are working on are left: wait for them
                    time.sleep(poll_s)
                    pending, held = held, []
                pool_broken = False
                while pending and len(in_flight) < 2 * workers:
                    if take is not None and pending[0].video_id not in taken:
                        verdict = take(pending[0])
                        if verdict != "mine":
                            source = pending.pop(0)
                            if verdict == "busy":
                                held.append(source)
                            continue
                        taken.add(pending[0].video_id)
                    try:
                        future = executor.submit(self.task, pending[0])
                    except BrokenProcessPool:
                        # A worker died after the last wait (typically right after handing back
                        # a result): its video is among in_flight, whose futures now fail.
                        pool_broken = True
                        break
                    in_flight[future] = pending.pop(0)
                done = wait(in_flight, return_when=FIRST_COMPLETED)[0] if in_flight else set()
                broken = []
                for future in done:
                    source = in_flight.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken.append(source)
                if broken or pool_broken:
                    suspects = broken + list(in_flight.values())
                    in_flight.clear()
                    executor.shutdown(wait=True, cancel_futures=True)
                    yield from self._isolate(suspects)
                    executor = self._executor(workers)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _isolate(self, suspects: list[VideoSource], attempts: int = 2) -> Iterator[Outcome]:
        """Re-run each video that was in flight when a worker died, alone, to find the culprit.
        A video is blamed only when it kills a fresh worker every time: a one-off death (a
        signal, the OOM killer, a rare decoder race) must not mark a good video failed."""
        for source in suspects:
            for _ in range(attempts):
                with self._executor(1) as executor:
                    try:
                        outcome = executor.submit(self.task, source).result()
                        break
                    except BrokenProcessPool:
                        continue
            else:
                outcome = crashed_outcome(source, self.log_dir, attempts)
            yield outcome


def crashed_outcome(source: VideoSource, log_dir: str | None, attempts: int) -> Outcome:
    where = f"; native output is in {Path(log_dir) / 'workers.log'}" if log_dir else ""
    error = (
        f"the worker process crashed while decoding/landmarking this file, {attempts} times out of {attempts}"
        f" (damaged video?){where}"
    )
    return Outcome(make_record(source, "failed", error), None)


def default_workers() -> int:
    """CPUs this process may use: SLURM's allocation when inside a job, else the affinity mask."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    return int(slurm) if slurm and slurm.isdigit() else len(os.sched_getaffinity(0))
