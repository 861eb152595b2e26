"""Shared fixtures. Tests run on real data (../shared) and real tools; nothing is skipped silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musclevision.paths import project_root

os.environ.setdefault("MUSCLEVISION_ROOT", str(project_root()))
os.environ.setdefault("WANDB_MODE", "offline")  # tests never talk to a W&B server
os.environ.setdefault("WANDB_SILENT", "true")

SHARED_DATA = Path(os.environ.get("MUSCLEVISION_DATA", project_root().parent / "shared" / "data")) / "ucf101-exercise"
# A small real subset: the six clips with the paper authors' reference keypoints, plus two
# clips (two groups) of every class, so data/model tests see all classes and several groups.
REFERENCE_CLIPS = [
    "BodyWeightSquats/v_BodyWeightSquats_g10_c01", "BodyWeightSquats/v_BodyWeightSquats_g11_c01",
    "BodyWeightSquats/v_BodyWeightSquats_g12_c01", "PushUps/v_PushUps_g12_c01", "PushUps/v_PushUps_g13_c01",
    "PushUps/v_PushUps_g14_c01",
]  # fmt: skip
EXTRA_CLIPS = [
    "BenchPress/v_BenchPress_g08_c01", "BenchPress/v_BenchPress_g11_c02", "Lunges/v_Lunges_g08_c01",
    "Lunges/v_Lunges_g12_c02", "WallPushups/v_WallPushups_g08_c01", "WallPushups/v_WallPushups_g13_c02",
    "BodyWeightSquats/v_BodyWeightSquats_g08_c01", "PushUps/v_PushUps_g08_c01",
]  # fmt: skip


@pytest.fixture(scope="session")
def ucf_videos() -> Path:
    videos = SHARED_DATA / "videos"
    if not videos.is_dir():
        pytest.fail(f"real test data missing: {videos} (CI runs with ../shared beside the checkout)")
    return videos


def link_clips(videos: Path, ids: list[str], root: Path) -> Path:
    """A video folder of symlinks to chosen shared clips (referenced by path, never copied)."""
    for video_id in ids:
        target = root / f"{video_id}.avi"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(videos / f"{video_id}.avi")
    return root


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
