"""Keypoint extraction throughput: the paper's way vs our pipeline, on the same real clips.

    python benchmarks/bench_extract.py                 # 20 clips, full model (~4 min on 2 cores)
    python benchmarks/bench_extract.py --clips 4 --variant lite
    python benchmarks/bench_extract.py --pose '{"rotations": [], "num_poses": 1}'   # other pose settings for (b)-(d)

Methods, each over the same clips, each making a fresh PoseLandmarker (VIDEO mode) per video:

  (a) paper     OpenCV reads every frame, writes it to a JPEG file, re-reads it, BGR->RGB,
                landmarks it with the legacy ``mp.solutions.pose`` (full model) the paper used;
                one process, serial. Legacy pose needs numpy<2, so it runs in its own small
                venv (``make bench`` creates .venv-legacy: mediapipe==0.10.21, numpy==1.26.4).
  (a') paper-T  the same, with our MediaPipe Tasks PoseLandmarker instead of legacy pose.
  (b) ours x1   ``extract_videos`` with 1 worker into a temp cache (decord decoding in memory,
                spawn, model load, cache writes: everything a user waits for).
  (c) ours x2   the same with 2 workers.
  (d) bare      the landmarker alone on frames already decoded in memory, one process: the
                limit per core (decoding is done before the clock starts).

Targets: (c)/(a) >= 2.2, and (c) within 10% of 2 x (d) (the pool scales and adds ~nothing).
Without .venv-legacy, (a') is the baseline and the script says so.
Timings depend on what else runs on the machine: the load average is printed before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# A fixed selection: the c01 clip of groups 09, 13, 17, 21 of each class (2708 frames,
# 51-267 per clip, some with frames where nobody is found). Interleaved by class so that
# --clips N still spans the classes.
CLASSES = ("BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups")
GROUPS = ("09", "13", "17", "21")
CLIPS = [f"{c}/v_{c}_g{g}_c01" for g in GROUPS for c in CLASSES]


def default_video_root() -> Path:
    from musclevision.paths import project_root

    data = os.environ.get("MUSCLEVISION_DATA", str(project_root().parent / "shared" / "data"))
    return Path(data) / "ucf101-exercise" / "videos"


@contextmanager
def native_output_to(log_path: Path):
    """Point fds 1 and 2 at a log file: MediaPipe/LiteRT write their chatter straight there."""
    from musclevision.extract.pool import redirect_native_output

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    redirect_native_output(log_path)  # what the pool's workers do, undone afterwards
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


# Run by .venv-legacy's python: the paper's extraction loop with legacy mp.solutions.pose.
LEGACY_SCRIPT = """
import json, pathlib, shutil, sys, time
import cv2, mediapipe as mp
scratch, paths = pathlib.Path(sys.argv[1]), sys.argv[2:]
frames = detected = 0
start = time.perf_counter()
for path in paths:
    folder = scratch / pathlib.Path(path).stem
    folder.mkdir()
    cap, count = cv2.VideoCapture(path), 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"{count:05d}.jpg"), frame)
        count += 1
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        for i in range(count):
            result = pose.process(cv2.cvtColor(cv2.imread(str(folder / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB))
            detected += result.pose_landmarks is not None
    frames += count
    shutil.rmtree(folder)
print(json.dumps([frames, detected, time.perf_counter() - start]))
"""


def legacy_paper_way(python: Path, paths: list[Path], scratch: Path, log: Path) -> tuple[int, int, float]:
    """(a): the paper's loop in .venv-legacy (legacy solutions.pose); its chatter goes to ``log``."""
    with open(log, "a") as err:
        done = subprocess.run([str(python), "-c", LEGACY_SCRIPT, str(scratch), *map(str, paths)], stdout=subprocess.PIPE,
                              stderr=err, text=True, env={**os.environ, "GLOG_minloglevel": "2"})  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the legacy paper way failed in {python}; see {log}")
    frames, detected, seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return frames, detected, seconds


def paper_way(paths: list[Path], settings, scratch: Path) -> tuple[int, int, float]:
    """(a): OpenCV frames -> JPEG files -> re-read -> landmarker, serial. Returns frames, detected, seconds."""
    import cv2

    from musclevision.extract.landmarker import create_landmarker, detect

    frames = detected = 0
    start = time.perf_counter()
    for path in paths:
        folder = scratch / path.stem
        folder.mkdir()
        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            cv2.imwrite(str(folder / f"{count:05d}.jpg"), frame)
            count += 1
        cap.release()
        with create_landmarker(settings, num_poses=1) as landmarker:  # the paper's loop: one person
            for i in range(count):
                rgb = cv2.cvtColor(cv2.imread(str(folder / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB)
                detected += detect(landmarker, rgb, int(round(i * 1000.0 / fps))) is not None
        frames += count
        shutil.rmtree(folder)
    return frames, detected, time.perf_counter() - start


def bare_landmarker(paths: list[Path], settings) -> tuple[int, int, float]:
    """(d): decode a video into memory (not timed), then time only landmarking (PoseTracker, as the
    pool runs it: rotated retries and several people when the settings ask for them)."""
    from musclevision.extract.landmarker import PoseTracker, timestamps_ms
    from musclevision.extract.video import iter_frames, open_video

    frames = detected = 0
    seconds = 0.0
    for path in paths:
        reader, info = open_video(path)
        decoded = list(iter_frames(reader, info))
        del reader
        stamps = timestamps_ms(len(decoded), info.fps)
        start = time.perf_counter()
        with PoseTracker(settings, info.width, info.height) as tracker:
            for frame, stamp in zip(decoded, stamps, strict=True):
                detected += tracker.detect(frame, stamp) is not None
        seconds += time.perf_counter() - start
        frames += len(decoded)
    return frames, detected, seconds


def pipeline(videos: Path, cache_dir: Path, pose: dict, workers: int) -> tuple[int, int, float]:
    """(b)/(c): extract_videos end to end into a fresh temp cache."""
    from musclevision.extract import extract_videos

    start = time.perf_counter()
    summary = extract_videos(videos, cache_dir, pose=pose, workers=workers)
    seconds = time.perf_counter() - start
    if summary.count("ok") + summary.count("partial") != summary.selected:
        raise SystemExit(f"pipeline with {workers} workers failed on: {[(r.video_id, r.error) for r in summary.failures]}")
    return summary.frames, summary.detected, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=len(CLIPS), help=f"how many of the {len(CLIPS)} clips (default all)")
    parser.add_argument("--variant", choices=("lite", "full", "heavy"), default="full", help="BlazePose landmark model")
    parser.add_argument("--pose", type=json.loads, default={},
                        help="other pose settings for (b)-(d), JSON (default: configs/extract.yaml's)")  # fmt: skip
    parser.add_argument("--video-root", type=Path, default=None, help="UCF101 exercise videos (default ../shared/...)")
    parser.add_argument("--legacy-python", type=Path, default=None,
                        help="python with mediapipe==0.10.21 (legacy solutions.pose) for (a); default .venv-legacy")  # fmt: skip
    args = parser.parse_args(argv)
    if not 1 <= args.clips <= len(CLIPS):
        parser.error(f"--clips must be between 1 and {len(CLIPS)}")
    video_root = args.video_root or default_video_root()
    ids = CLIPS[: args.clips]
    paths = [video_root / f"{video_id}.avi" for video_id in ids]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"clips not found: {missing}")

    from musclevision.extract import PoseSettings
    from musclevision.paths import project_root

    legacy_python = args.legacy_python or project_root() / ".venv-legacy" / "bin" / "python"

    cpus = len(os.sched_getaffinity(0))
    classes = sorted({video_id.split("/")[0] for video_id in ids})
    groups = sorted({video_id.split("_g")[1][:2] for video_id in ids})
    print(f"{len(ids)} clips (c01 of groups {', '.join(groups)} of {', '.join(classes)}), model {args.variant}, "
          f"pose settings {json.dumps(args.pose) if args.pose else 'default'}, {cpus} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
    rows: dict[str, tuple[int, int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        tmp = Path(tmp)
        videos = tmp / "videos"  # symlinks: the clips are never copied
        for video_id, path in zip(ids, paths, strict=True):
            (videos / video_id).parent.mkdir(parents=True, exist_ok=True)
            (videos / f"{video_id}.avi").symlink_to(path)
        log = tmp / "mediapipe.log"
        with native_output_to(log):
            pose = {**args.pose, "model": args.variant}
            settings = PoseSettings.resolve(**pose)
            from musclevision.extract.landmarker import create_landmarker

            with create_landmarker(settings):  # warm-up: model file in the page cache, libraries loaded
                pass
        steps = [("(a') paper-T: OpenCV -> JPEG -> re-read, Tasks landmarker", lambda: paper_way(paths, settings, tmp))]
        if legacy_python.is_file() and args.variant == "full":
            run_legacy = lambda: legacy_paper_way(legacy_python, paths, tmp, log)  # noqa: E731
            steps.insert(0, ("(a) paper: OpenCV -> JPEG -> re-read, legacy pose", run_legacy))
        else:
            print(f"note: {legacy_python} not found (or not the full model): (a') is the baseline; `make bench` creates it")
        steps += [
            ("(b) ours: extract_videos, 1 worker", lambda: pipeline(videos, tmp / "cache1", pose, 1)),
            ("(c) ours: extract_videos, 2 workers", lambda: pipeline(videos, tmp / "cache2", pose, 2)),
            ("(d) bare landmarker, frames in memory, 1 process", lambda: bare_landmarker(paths, settings)),
        ]
        for name, run in steps:
            print(f"running {name} ...", flush=True)
            with native_output_to(log):
                rows[name] = run()

    base = rows[steps[0][0]]
    base_fps = base[0] / base[2]
    width = max(len(name) for name in rows)
    print(f"\n{'method':<{width}}  {'frames':>6}  {'detected':>8}  {'seconds':>8}  {'frames/s':>8}  {'vs base':>7}")
    fps = {}
    for name, (frames, detected, seconds) in rows.items():
        fps[name.split()[0]] = frames / seconds
        print(
            f"{name:<{width}}  {frames:>6}  {detected / max(frames, 1):>8.1%}  {seconds:>8.1f}  {frames / seconds:>8.1f}  "
            f"{frames / seconds / base_fps:>5.2f}x"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at the end (timings are only comparable on an otherwise idle machine)")
    baseline = "(a)" if "(a)" in fps else "(a')"
    speedup = fps["(c)"] / fps[baseline]
    scaling = fps["(c)"] / (2 * fps["(d)"])
    print("\ntargets:")
    print(f"  (c)/{baseline} = {speedup:.2f}  (target >= 2.2)  {'PASS' if speedup >= 2.2 else 'FAIL'}")
    if "(a)" in fps:
        tasks_ratio = fps["(c)"] / fps["(a')"]
        print(f"  (c)/(a') = {tasks_ratio:.2f}  (the same loop with the Tasks landmarker, for reference)")
    print(f"  (c)/(2 x (d)) = {scaling:.2f}  (target: within 10%, >= 0.90)  {'PASS' if scaling >= 0.9 else 'FAIL'}"
          + ("  [above 1.10: the machine's load probably changed between runs]" if scaling > 1.1 else ""))  # fmt: skip
    if cpus < 2:
        print("  note: fewer than 2 CPUs available, (c) cannot scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
