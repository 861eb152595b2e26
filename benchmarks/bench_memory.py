"""Peak memory of training against the window, the batch size and the amount of data.

    python benchmarks/bench_memory.py

Each row is one ``musclevision-train data=synthetic`` process (a few batches of training and of
evaluation), its peak resident memory read with getrusage. The claim it checks (README,
"Reliability"): memory grows with the frames of a batch (batch_size x window; evaluation: at most
data.eval_batch_frames), not with the window alone nor with the dataset beyond its keypoints.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(Path(sys.executable).parent / "musclevision-train")
# (label, overrides): synthetic clips are 77-199 frames long; groups x 3 clips x 5 classes.
CASES = [
    ("window 8, batch 32, 180 clips", ["data.window=8"]),
    ("window 64, batch 32, 180 clips", ["data.window=64"]),
    ("window 190, batch 32, 180 clips", ["data.window=190"]),
    ("window 8, batch 256, 180 clips", ["data.window=8", "data.batch_size=256"]),
    ("window 8, batch 32, 720 clips", ["data.window=8", "data.source.groups=48"]),
    ("window 100000 (refused)", ["data.window=100000"]),
]


def peak_rss_mb(overrides: list[str]) -> tuple[float, int, str]:
    """Run one training in a child process; its peak RSS in MB, exit code and last stderr line."""
    with tempfile.TemporaryDirectory() as out:
        code = (
            "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode); "
            "print((done.stderr.strip().splitlines() or [''])[-1][:150])"
        )
        command = [TRAIN, "data=synthetic", "trainer.max_epochs=1", "+trainer.limit_train_batches=20",
                   "+trainer.limit_val_batches=4", "logger=none", "callbacks.progress_bar=null", "eval_ckpt=none",
                   f"hydra.run.dir={out}", *overrides]  # fmt: skip
        done = subprocess.run([sys.executable, "-c", code, *command], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "MUSCLEVISION_ROOT": str(ROOT)})  # fmt: skip
        first, last = (done.stdout.splitlines() + ["", ""])[:2]
        kb, rc = first.split()
        return int(kb) / 1024, int(rc), last


def main() -> None:
    print(f"{'case':36} {'peak RSS':>10}  exit  note")
    base = None
    for label, overrides in CASES:
        mb, rc, last = peak_rss_mb(overrides)
        base = base or mb
        note = last if rc else f"{mb / base:.2f}x the first row"
        print(f"{label:36} {mb:8.0f} MB  {rc:4d}  {note}")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
