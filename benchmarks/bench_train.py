"""Wall time of the paper's training recipe on the cached keypoints of the shared clips.

    python benchmarks/bench_train.py            # experiment=paper, fold 0, 50 epochs
    python benchmarks/bench_train.py --experiment best

The paper reports 6 min 40 s on a T4 GPU for this recipe; the target here is <= 60 s on 2 CPU
cores. Prints the whole command's wall time (what a user waits, imports included) and the
part from loading the data to the final report. Needs the keypoint cache (musclevision-extract).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def cache_dir(experiment: str, overrides: list[str]) -> Path:
    """The keypoint cache the training command would read (its composed data.source.cache_dir)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from musclevision.paths import config_dir

    os.environ.setdefault("MUSCLEVISION_ROOT", str(ROOT))
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
    return Path(str(OmegaConf.select(cfg, "data.source.cache_dir")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="paper")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    cache = cache_dir(args.experiment, args.overrides)
    if not (cache / "cache.json").is_file():  # a benchmark of training must not start an extraction of every clip
        sys.exit(f"bench_train: no keypoint cache at {cache}: build it first (README, section 1: musclevision-extract "
                 f"video_root=../shared/data/ucf101-exercise/videos cache_dir={cache} workers=2)")  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        command = [
            str(Path(sys.executable).parent / "musclevision-train"), f"experiment={args.experiment}", "logger=csv",
            f"hydra.run.dir={out}", "callbacks.progress_bar=null", "callbacks.model_summary=null",
            "data.source.video_root=null", *args.overrides,  # the cache as it is: never extract here
        ]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "MUSCLEVISION_ROOT": str(ROOT)},
                              capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"training failed:\n{done.stderr[-3000:]}")
        metrics = json.loads((Path(out) / "val_metrics.json").read_text())
        epochs = torch.load(Path(out) / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] + 1
        log = (Path(out) / "train.log").read_text().splitlines()
        stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f") for line in log if line.startswith("[")]
        fit_and_eval = (stamps[-1] - stamps[0]).total_seconds()  # from "model ..." to the final report line
    rows = [
        ("experiment", args.experiment),
        ("epochs", str(epochs)),
        ("wall time, whole command", f"{wall:.1f} s"),
        ("  of which data + fit + report", f"{fit_and_eval:.1f} s"),
        ("paper (T4 GPU)", "400.0 s"),
        ("speed-up vs paper", f"{400.0 / wall:.1f}x"),
        ("target", "<= 60 s: " + ("met" if wall <= 60 else "NOT met")),
        ("val window acc", f"{metrics['window']['acc']:.1%}"),
        ("val whole-clip acc", f"{metrics['wholeclip']['acc']:.1%}" if "wholeclip" in metrics else "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
