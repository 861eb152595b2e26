"""Who does BlazePose find, per extractor remedy: rotated retries, lower thresholds, several people.

    python benchmarks/bench_pose_remedies.py                                  # BenchPress, every remedy
    python benchmarks/bench_pose_remedies.py --classes all --remedies baseline poses=2
    python benchmarks/bench_pose_remedies.py --remedy 'mine={"rotations": [90], "num_poses": 2}' --remedies mine
    python benchmarks/bench_pose_remedies.py --keep data/cache/remedies      # keep each remedy's cache (resumes)

Each remedy is a set of ``pose.*`` settings (the extractor's PoseSettings); each is run with the
real extractor (``extract_videos``, the worker pool, ``--workers`` processes) over the same clips
into its own cache. Per remedy it prints, per class and for all selected clips:

- frames with a person (%), frames with a *lying* person (the torso, shoulders to hips in world
  landmarks, nearer horizontal than vertical: on BenchPress that is the lifter, a spotter
  stands; a proxy that needs no labels), clips that failed (no person in any frame), clips with no usable
  window (no 8 consecutive frames holding >= 4 with a person: data.window / data.min_detected);
- the extraction speed (frames/s of the whole run: start-up, decoding, retries, writes);
- how far the keypoints moved against the first remedy on frames both found a person
  (mean |dx, dy| in normalized image units; changes that should only add frames must not move
  the existing ones much), and how many frames were found in a rotated orientation.

Timings depend on what else runs on the machine: the load average is printed before/after.
``--cost CLIPS`` measures instead the landmarking cost per frame of each remedy in one process, on
frames decoded beforehand, the remedies taking turns clip by clip over several rounds so that a
change in the machine's load hits them all alike (the median round is printed, relative to the first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REMEDIES = {
    "baseline": {},
    "rot90,270": {"rotations": [90, 270]},
    "det,pres=0.3": {"min_pose_detection_confidence": 0.3, "min_pose_presence_confidence": 0.3},
    "det,pres=0.2": {"min_pose_detection_confidence": 0.2, "min_pose_presence_confidence": 0.2},
    "det,pres=0.2+rot": {"min_pose_detection_confidence": 0.2, "min_pose_presence_confidence": 0.2, "rotations": [90, 270]},
    "poses=2": {"num_poses": 2},  # several people once a check (every people_check_s, 1 s) sees them
    "poses=2,start": {"num_poses": 2, "people_check_s": 0},  # several people from the first frame
    "zoom1": {"zoom_out": 1},  # the other settings as configs/extract.yaml, no zoom-out retries
    "zoom2": {"zoom_out": 2},  # ... then retried on the frame shrunk into a canvas twice as large
}
WINDOW, MIN_DETECTED = 8, 4  # configs/data/ucf101.yaml: window, min_detected


def default_video_root() -> Path:
    from musclevision.paths import project_root

    data = os.environ.get("MUSCLEVISION_DATA", str(project_root().parent / "shared" / "data"))
    return Path(data) / "ucf101-exercise" / "videos"


def has_usable_window(present: np.ndarray) -> bool:
    """Some WINDOW consecutive frames hold at least MIN_DETECTED with a person."""
    if len(present) < WINDOW:
        return bool(present.sum() >= MIN_DETECTED)  # a short clip is one padded window
    counts = np.convolve(present.astype(int), np.ones(WINDOW, int), mode="valid")
    return bool(counts.max() >= MIN_DETECTED)


def cache_stats(cache_dir: Path, reference: Path | None = None, only: set | None = None) -> dict:
    """Per class: clips, frames, frames with a person, failed clips, clips without a usable window,
    frames found rotated, and (with ``reference``) the keypoint movement on frames both found.
    ``only``: the video ids to count (default all in the cache)."""
    from musclevision.extract import KeypointCache
    from musclevision.pose.geometry import lying

    cache = KeypointCache(cache_dir)
    ref = KeypointCache(reference) if reference is not None else None
    stats: dict[str, dict] = {}
    for record in cache.records().values():
        if only is not None and record.video_id not in only:
            continue
        s = stats.setdefault(record.label, dict(clips=0, frames=0, person=0, lying=0, failed=0, no_window=0, rotated=0, zoomed=0,
                                                moved=[], failed_ids=[], no_window_ids=[], calls=0, seconds=0.0))  # fmt: skip
        s["clips"] += 1
        s["calls"] += record.landmarker_calls or record.frames_decoded
        s["seconds"] += record.seconds
        s["frames"] += record.frames_decoded
        s["person"] += record.frames_detected
        s["rotated"] += sum(n for k, n in (record.orientations or {}).items() if k.partition("x")[0] != "0")  # "90", "270x2"
        s["zoomed"] += sum(n for k, n in (record.orientations or {}).items() if "x" in k)  # "0x2": zoomed out
        if record.status == "failed":
            s["failed"] += 1
            s["failed_ids"].append(record.video_id)
            s["no_window"] += 1
            s["no_window_ids"].append(record.video_id)
            continue
        clip = cache.load(record.video_id)
        present = ~np.isnan(clip.image[:, 0, 0])
        s["lying"] += int((present & lying(clip.world)).sum())
        if not has_usable_window(present):
            s["no_window"] += 1
            s["no_window_ids"].append(record.video_id)
        if ref is not None and ref.records().get(record.video_id) and ref.records()[record.video_id].status != "failed":
            other = ref.load(record.video_id).image
            if len(other) == len(clip.image):
                both = present & ~np.isnan(other[:, 0, 0])
                if both.any():
                    s["moved"].append(np.abs(clip.image[both, :, :2] - other[both, :, :2]).mean(axis=(1, 2)))
    return stats


def total(stats: dict) -> dict:
    out = dict(clips=0, frames=0, person=0, lying=0, failed=0, no_window=0, rotated=0, zoomed=0, moved=[], failed_ids=[],
               no_window_ids=[], calls=0, seconds=0.0)  # fmt: skip
    for s in stats.values():
        for k in out:
            out[k] += s[k]
    return out


def moved(s: dict) -> str:
    return f"{np.concatenate(s['moved']).mean():.4f}" if s["moved"] else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", nargs="+", default=["BenchPress"], help="class folders, or 'all' (default BenchPress)")
    parser.add_argument("--remedies", nargs="+", default=None, help=f"which remedies, in order (default all: {list(REMEDIES)})")
    parser.add_argument("--remedy", action="append", default=[], metavar='NAME={"pose_key": value}',
                        help="add a remedy: a name and its pose settings as JSON ('default' = configs/extract.yaml)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="at most this many clips (quick tries)")
    parser.add_argument("--shard", default="0/1", help="i/n: every n-th clip from the i-th (a quicker screen, e.g. 0/3)")
    parser.add_argument("--video-root", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep each remedy's cache under this folder (re-runs resume)")
    parser.add_argument("--cost", nargs="+", default=None, metavar="VIDEO_ID",
                        help="ms per frame of each remedy on these clips, e.g. BenchPress/v_BenchPress_g09_c01")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --cost (default 3)")
    parser.add_argument("--caches", nargs="+", default=None, metavar="NAME=DIR",
                        help="only report on caches made before (the first is the reference): before=DIR after=DIR")  # fmt: skip
    args = parser.parse_args(argv)

    from musclevision.extract import extract_videos

    remedies = dict(REMEDIES)
    remedies["default"] = default_pose_settings()
    for item in args.remedy:
        name, _, settings = item.partition("=")
        remedies[name] = json.loads(settings)
    names = args.remedies or [n for n in remedies if n != "default"]
    unknown = [n for n in names if n not in remedies]
    if unknown:
        parser.error(f"unknown remedies {unknown}; known: {list(remedies)}")
    video_root = args.video_root or default_video_root()
    if args.caches:
        return report_caches([item.partition("=")[::2] for item in args.caches], args.classes)
    if args.cost:
        return measure_cost(video_root, args.cost, {n: remedies[n] for n in names}, args.rounds)
    classes = None if args.classes == ["all"] else args.classes
    print(f"classes {args.classes}, {args.workers} workers, {len(os.sched_getaffinity(0))} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)  # fmt: skip

    from musclevision.extract.discover import find_videos, parse_shard, take_shard

    selected = {s.video_id for s in take_shard(find_videos(video_root, classes=classes), *parse_shard(args.shard))[: args.limit]}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-remedies-") as tmp:
        root = args.keep or Path(tmp)
        first = None
        for name in names:
            cache_dir = root / name.replace("/", "_")
            print(f"running {name}: {json.dumps(remedies[name])} ...", flush=True)
            start = time.perf_counter()
            summary = extract_videos(video_root, cache_dir, pose=remedies[name], classes=classes, workers=args.workers,
                                     limit=args.limit, shard=args.shard)  # fmt: skip
            seconds = time.perf_counter() - start
            fps = summary.frames / seconds if summary.done and not summary.skipped else float("nan")
            stats = cache_stats(cache_dir, first, selected)
            rows.append((name, stats, fps))
            first = first or cache_dir
            print_remedy(name, stats, fps)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end (timings are only comparable on an otherwise idle machine)")
        print_table(rows)
    return 0


def report_caches(caches: list[tuple[str, str]], classes: list[str]) -> int:
    """The per-remedy report for caches made before (e.g. the shared cache before and after a change)."""
    from musclevision.extract import KeypointCache

    ids = [set(KeypointCache(path).records()) for _, path in caches]
    common = set.intersection(*ids)
    if classes != ["all"]:
        common = {v for v in common if v.split("/")[0] in classes}
    print(f"{len(common)} clips in every cache ({', '.join(f'{n}: {len(i)}' for (n, _), i in zip(caches, ids))})")
    rows = []
    for name, path in caches:
        stats = cache_stats(Path(path), Path(caches[0][1]) if rows else None, common)
        alls = total(stats)
        fps = alls["frames"] / max(alls["seconds"], 1e-9)  # per worker: the manifest's seconds are each video's own
        print(f"{name}: {path}")
        print_remedy(name, stats, fps, "frames/s per worker (from the manifest's seconds)")
        rows.append((name, stats, fps))
    print_table(rows)
    return 0


def measure_cost(video_root: Path, video_ids: list[str], remedies: dict, rounds: int) -> int:
    """Per remedy: landmarker calls and milliseconds per frame, frames decoded beforehand, remedies in turns."""
    from musclevision.extract.landmarker import PoseSettings, PoseTracker, timestamps_ms
    from musclevision.extract.pool import redirect_native_output
    from musclevision.extract.video import iter_frames, open_video

    clips = []
    for video_id in video_ids:
        reader, info = open_video(video_root / f"{video_id}.avi")
        frames = list(iter_frames(reader, info))
        clips.append((frames, timestamps_ms(len(frames), info.fps), info.width, info.height))
    frames = sum(len(c[0]) for c in clips)
    settings = {name: PoseSettings.resolve(**pose) for name, pose in remedies.items()}
    print(f"cost per frame: {len(clips)} clips, {frames} frames, {rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    sys.stdout.flush()
    saved = os.dup(1), os.dup(2)
    redirect_native_output(Path(tempfile.gettempdir()) / "bench-remedies-mediapipe.log")  # MediaPipe chatter
    seconds = {name: [] for name in remedies}
    calls, found = {}, {}
    try:
        for _ in range(rounds):
            spent = dict.fromkeys(remedies, 0.0)
            for clip_frames, stamps, width, height in clips:
                for name in remedies:
                    start = time.perf_counter()
                    with PoseTracker(settings[name], width, height) as tracker:
                        hits = sum(tracker.detect(f, t) is not None for f, t in zip(clip_frames, stamps))
                    spent[name] += time.perf_counter() - start
                    calls[name] = calls.get(name, 0) + tracker.calls
                    found[name] = found.get(name, 0) + hits
            for name in remedies:
                seconds[name].append(spent[name])
    finally:
        for fd, copy in enumerate(saved, start=1):
            os.dup2(copy, fd)
            os.close(copy)
    first = float(np.median(seconds[next(iter(remedies))]))
    print(f"{'remedy':<18} {'ms/frame':>8} {'vs first':>8} {'calls/frame':>11} {'found':>6}")
    for name in remedies:
        median = float(np.median(seconds[name]))
        print(f"{name:<18} {1000 * median / frames:8.2f} {median / first:8.2f} {calls[name] / (rounds * frames):11.2f} "
              f"{found[name] / (rounds * frames):6.1%}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


def default_pose_settings() -> dict:
    from omegaconf import OmegaConf

    from musclevision.paths import config_dir

    return OmegaConf.to_container(OmegaConf.load(config_dir() / "pose" / "default.yaml"))  # the extractor's pose settings


def print_remedy(name: str, stats: dict, fps: float, what: str = "frames/s") -> None:
    for label in sorted(stats):
        s = stats[label]
        frames = max(s["frames"], 1)
        print(f"  {label:<17} {s['person'] / frames:6.1%} frames with a person ({s['lying'] / frames:.1%} lying), "
              f"{s['failed']} failed, "
              f"{s['no_window']} without a usable window, {s['rotated']} frames found rotated, {s['zoomed']} zoomed out, "
              f"moved {moved(s)}")  # fmt: skip
        if s["no_window_ids"]:
            print(f"  {'':<17} without a window: {', '.join(v.split('/')[-1] for v in sorted(s['no_window_ids']))}")
    calls = total(stats)["calls"] / max(total(stats)["frames"], 1)
    print(f"  {'speed':<17} {fps:.1f} {what}, {calls:.3f} landmarker calls per frame", flush=True)


def print_table(rows) -> None:
    print(f"\n{'remedy':<18} {'BenchPress':>10} {'BP lying':>8} {'BP failed':>9} {'no window':>9} {'all classes':>11} "
          f"{'failed':>6} {'frames/s':>8} {'moved':>6}")  # fmt: skip
    for name, stats, fps in rows:
        bench = stats.get("BenchPress")
        alls = total(stats)
        frames = max(bench["frames"], 1) if bench else 1
        bp = (f"{bench['person'] / frames:10.1%} {bench['lying'] / frames:8.1%} {bench['failed']:>9}" if bench
              else f"{'-':>10} {'-':>8} {'-':>9}")  # fmt: skip
        print(f"{name:<18} {bp} {alls['no_window']:>9} {alls['person'] / max(alls['frames'], 1):>11.1%} {alls['failed']:>6} "
              f"{fps:>8.1f} {moved(alls):>6}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
