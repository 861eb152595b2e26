"""Shared fixtures. Tests run on real data (../shared) and real tools; nothing is skipped silently."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from helpers import EXTRA_CLIPS, REFERENCE_CLIPS, SHARED_DATA, link_clips
from musclevision.paths import project_root

os.environ.setdefault("MUSCLEVISION_ROOT", str(project_root()))
os.environ.setdefault("WANDB_MODE", "offline")  # tests never talk to a W&B server
os.environ.setdefault("WANDB_SILENT", "true")

# The whole suite in one process was twice killed by SIGPROF ("Profiling timer expired") during the
# in-process MediaPipe parity tests (tests/web/test_web_keypoints.py), never when those ran alone. Nothing
# of ours arms a profiling timer; libmediapipe.so carries a SIGPROF-based CPU profiler. The test process
# ignores the signal (extraction itself runs in worker processes, which the signal never reached).
signal.signal(signal.SIGPROF, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def _ignore_profiling_timer():
    yield
    signal.signal(signal.SIGPROF, signal.SIG_IGN)  # again after each test, whatever a library installed


@pytest.fixture(scope="session")
def ucf_videos() -> Path:
    videos = SHARED_DATA / "videos"
    if not videos.is_dir():
        pytest.fail(f"real test data missing: {videos} (CI runs with ../shared beside the checkout)")
    return videos


@pytest.fixture(scope="session")
def real_cache(ucf_videos: Path, tmp_path_factory) -> Path:
    """A keypoint cache of 14 real clips, extracted once per session with 2 workers."""
    from musclevision.extract import extract_videos

    root = tmp_path_factory.mktemp("real")
    videos = link_clips(ucf_videos, REFERENCE_CLIPS + EXTRA_CLIPS, root / "videos")
    summary = extract_videos(videos, root / "cache", workers=2)
    assert not summary.failures, [(r.video_id, r.error) for r in summary.failures]
    return root / "cache"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(f"FAILING: {len(skipped)} tests were skipped; CI must run everything", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1  # a skipped test is a test that did not run: fail loudly
