"""Shared test helpers: the real-data subset, and running the console scripts the way users do.

Tests import from here, never from conftest.py: tests/ and tests/web/ each have a conftest module
of that same name, and which one `import conftest` finds depends on sys.path order (spawned
worker processes that import a test module see a different order and failed on it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from musclevision.paths import project_root

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

BIN = Path(sys.executable).parent
# A small synthetic dataset: every training test runs in seconds on any machine.
SMALL_SYNTHETIC = ["data=synthetic", "data.source.groups=4", "data.source.clips_per_group=2", "data.split.folds=2",
                   "data.eval_stride=4", "data.batch_size=64"]  # fmt: skip


def run_cli(script: str, *overrides: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run ``musclevision-<script>`` with Hydra overrides; returns the CompletedProcess (never raises)."""
    return subprocess.run(
        [str(BIN / f"musclevision-{script}"), *overrides], cwd=cwd or project_root(), capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})},
    )  # fmt: skip


def assert_ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"


def link_clips(videos: Path, ids: list[str], root: Path) -> Path:
    """A video folder of symlinks to chosen shared clips (referenced by path, never copied)."""
    for video_id in ids:
        target = root / f"{video_id}.avi"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(videos / f"{video_id}.avi")
    return root
