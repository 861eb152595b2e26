"""Running the console scripts the way users do, in a temp run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from musclevision.paths import project_root

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
