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

from conftest import link_clips
from musclevision.extract import KeypointCache, PoseSettings
from musclevision.extract.pool import ExtractorPool, process_video
from musclevision.extract.sources import find_videos

# Spawned workers import this module to find the task: keep its imports light (test_extract
# pulls in musclevision.data, i.e. torch and Lightning, seconds per worker process).

# Five short clips; the pool hands them out largest file first, so CRASH_ID (3rd largest) is
# started right after the first video finishes, while one video still waits to be submitted.
CLIPS = [
    "PushUps/v_PushUps_g16_c04", "PushUps/v_PushUps_g16_c03", "BenchPress/v_BenchPress_g15_c06",
    "Lunges/v_Lunges_g20_c02", "Lunges/v_Lunges_g20_c03",
]  # fmt: skip
CRASH_ID = "Lunges/v_Lunges_g20_c03"


def crash_on_one_video(source):
    """Like process_video, but the worker segfaults on CRASH_ID (no core file)."""
    if source.video_id == CRASH_ID:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), signal.SIGSEGV)
    return process_video(source)


def test_a_crashing_worker_is_isolated_and_the_batch_goes_on(tmp_path, ucf_videos):
    from test_extract import SHORT_CLIPS, assert_clip_consistent

    assert CLIPS == SHORT_CLIPS[:5]
    videos = link_clips(ucf_videos, CLIPS, tmp_path / "videos")
    sources = find_videos(videos)
    order = [s.video_id for s in sorted(sources, key=lambda s: s.size, reverse=True)]
    assert order.index(CRASH_ID) == 2, order  # the scenario described above
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
    assert "workers.log" in crashed.error
    for video_id in set(CLIPS) - {CRASH_ID}:
        assert by_id[video_id].status == "ok", by_id[video_id]
        assert_clip_consistent(cache, video_id)
    assert [r.video_id for r in cache.failures()] == [CRASH_ID]
