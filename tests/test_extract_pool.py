"""The worker pool isolates a worker that dies (a decoder segfault on a damaged file): the
culprit is recorded as failed, every other video still completes, each exactly once.

The crash is real: a worker process kills itself with SIGSEGV. The pool runs a task from this
module (the ``task`` seam of ExtractorPool); spawned workers import it by name, since pytest
puts ``tests/`` on ``sys.path`` and spawn hands ``sys.path`` to its children.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from pathlib import Path

import pytest

from helpers import SHORT_CLIPS, assert_clip_consistent, link_clips
from musclevision.extract import KeypointCache, PoseSettings
from musclevision.extract.discover import find_videos
from musclevision.extract.pool import ExtractorPool, process_video

pytestmark = pytest.mark.integration  # real videos and MediaPipe

# Spawned workers import this module to find the task: keep its imports light (no musclevision.data,
# i.e. no torch and Lightning: seconds per worker process).

# Five short clips; the pool hands them out largest file first, so CRASH_ID (3rd largest) is
# started right after the first video finishes, while one video still waits to be submitted.
CLIPS = [
    "PushUps/v_PushUps_g16_c04", "PushUps/v_PushUps_g16_c03", "BenchPress/v_BenchPress_g15_c06",
    "Lunges/v_Lunges_g20_c02", "Lunges/v_Lunges_g20_c03",
]  # fmt: skip
CRASH_ID = "Lunges/v_Lunges_g20_c03"
# The smallest clip, handed out last: its worker dies once only (a one-off, like the OOM killer),
# so it must be retried and succeed, not be blamed.
FLAKY_ID = "PushUps/v_PushUps_g16_c04"


def segfault() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
    os.kill(os.getpid(), signal.SIGSEGV)


def crash_on_one_video(source):
    """Like process_video, but the worker segfaults on CRASH_ID always and on FLAKY_ID once."""
    if source.video_id == CRASH_ID:
        segfault()
    if source.video_id == FLAKY_ID:
        marker = Path(os.environ["MV_TEST_CRASHED_ONCE"])
        if not marker.exists():
            marker.touch()
            segfault()
    return process_video(source)


def test_a_crashing_worker_is_isolated_and_the_batch_goes_on(tmp_path, ucf_videos, monkeypatch):
    assert CLIPS == SHORT_CLIPS[:5]
    videos = link_clips(ucf_videos, CLIPS, tmp_path / "videos")
    sources = find_videos(videos)
    order = [s.video_id for s in sorted(sources, key=lambda s: s.size, reverse=True)]
    assert order.index(CRASH_ID) == 2 and order[-1] == FLAKY_ID, order  # the scenario described above
    monkeypatch.setenv("MV_TEST_CRASHED_ONCE", str(tmp_path / "crashed-once"))  # spawned workers inherit it
    cache = KeypointCache.open_for_writing(tmp_path / "cache", PoseSettings.resolve().cache_key())
    pool = ExtractorPool(PoseSettings.resolve(), workers=2, log_dir=tmp_path / "cache" / "logs", task=crash_on_one_video)

    outcomes = []
    for outcome in pool.run(sources):
        outcomes.append(outcome)
        kp = outcome.keypoints
        if kp is not None:
            cache.write(outcome.record, kp.image, kp.world, kp.timestamps_ms)
        else:
            cache.write(outcome.record)
        # Like a slow disk: the dead worker is noticed before the pool is handed the next video.
        time.sleep(0.3)

    ids = [o.record.video_id for o in outcomes]
    assert sorted(ids) == sorted(CLIPS), f"every video exactly once: {ids}"
    by_id = {o.record.video_id: o.record for o in outcomes}
    crashed = by_id[CRASH_ID]
    assert crashed.status == "failed" and "worker process crashed" in crashed.error, crashed
    assert "2 times out of 2" in crashed.error and "workers.log" in crashed.error
    assert (tmp_path / "crashed-once").exists(), "the flaky video's worker should have died once"
    for video_id in set(CLIPS) - {CRASH_ID}:
        assert by_id[video_id].status == "ok", f"{video_id}: {by_id[video_id].error}"
        assert_clip_consistent(cache, video_id)
    assert [r.video_id for r in cache.failures()] == [CRASH_ID]
