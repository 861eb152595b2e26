"""Shared fixtures. Tests run on real data (../shared) and real tools; nothing is skipped silently."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from helpers import EXTRA_CLIPS, ONE_WORKER, REFERENCE_CLIPS, SHARED_DATA, link_clips
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


def shared_temp(tmp_path_factory) -> Path:
    """A temp folder all processes of this run see: the run's own, or, with pytest-xdist workers, their common parent."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def real_cache(ucf_videos: Path, tmp_path_factory) -> Path:
    """A keypoint cache of 14 real clips, extracted once per test run with 2 workers (the first pytest worker to
    need it extracts it, the others wait on the lock and reuse it)."""
    from filelock import FileLock

    from musclevision.extract import extract_videos

    root = shared_temp(tmp_path_factory) / "real"
    root.mkdir(exist_ok=True)
    with FileLock(str(root / ".lock")):
        if not (root / "done").is_file():
            videos = link_clips(ucf_videos, REFERENCE_CLIPS + EXTRA_CLIPS, root / "videos")
            summary = extract_videos(videos, root / "cache", workers=2)
            assert not summary.failures, [(r.video_id, r.error) for r in summary.failures]
            (root / "done").touch()
    return root / "cache"


def pytest_xdist_make_scheduler(config, log):
    """xdist's load balancing, test by test, except that each ONE_WORKER module is one unit of work. (Its own
    ``xdist_group`` mark does nothing under pytest 9: it renames items through an attribute pytest no longer
    reads.) Units go out largest first, so these long modules start at once and the short tests fill in around."""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return module if module in ONE_WORKER else nodeid

    return Scheduling(config, log)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(f"FAILING: {len(skipped)} tests were skipped; CI must run everything", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1  # a skipped test is a test that did not run: fail loudly
