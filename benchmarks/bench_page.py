"""Benchmark the live demo page: does the classifier cost the page any frames?

Side by side, in one run, on the same real clip fed to headless Chromium as its webcam:

* onnxruntime (Python, CPU, one thread): latency of one classifier window;
* onnxruntime-web (wasm, one thread) in the page: latency of one window (target <= 1 ms);
* page FPS with pose only (``?classifier=off``) vs pose + classifier (target ratio >= 0.95),
  alternating the two modes over several rounds so background load hits both alike;
* Chromium's memory (PSS of its processes) with a blank page and while the page runs.

    python benchmarks/bench_page.py                       # exports/best.json, a BodyWeightSquats clip
    python benchmarks/bench_page.py --export /path/card.json --seconds 20 --rounds 3 --json out.json

Needs `make setup` (assets) and `make system-deps` (chromium, ffmpeg). Prints a table; with
--check the exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from musclevision.paths import project_root
from musclevision.web.serve import ServeError, load_site, make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))  # the web tests' Chromium flags and server
from web_helpers import CHROMIUM, CHROMIUM_ARGS, fake_camera_args, serving  # noqa: E402

DEFAULT_CLIP = "BodyWeightSquats/v_BodyWeightSquats_g10_c02.avi"
TARGET_ORT_WEB_MS = 1.0
TARGET_FPS_RATIO = 0.95


def default_videos() -> Path:
    data = Path(os.environ.get("MUSCLEVISION_DATA", project_root().parent / "shared" / "data"))
    return data / "ucf101-exercise" / "videos"


def sample_windows(card: dict, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible landmark windows (one frame without a person in each), shaped like the card's inputs."""
    rng = np.random.default_rng(seed)
    w = card["window_policy"]["window"]
    image = np.concatenate([rng.uniform(0.2, 0.8, (count, w, 33, 3)), rng.uniform(0.5, 1.0, (count, w, 33, 1))], axis=-1).astype(
        np.float32
    )
    image[:, 0] = np.nan
    feeds = {"landmarks": image}
    if any(i["name"] == "world" for i in card["inputs"]):
        world = rng.uniform(-0.6, 0.6, (count, w, 33, 3)).astype(np.float32)
        world[:, 0] = np.nan
        feeds["world"] = world
    return feeds


def bench_python_ort(onnx_path: Path, card: dict, runs: int) -> dict:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feeds = sample_windows(card, 16)
    one = [{k: v[i : i + 1] for k, v in feeds.items()} for i in range(16)]
    for i in range(50):
        session.run(None, one[i % 16])
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        session.run(None, one[i % 16])
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90)), "runs": runs}


ORT_WEB_BENCH = """async (arg) => {
  const C = await import('/js/classifier.js');
  const card = await (await fetch('/model/card.json')).json();
  const clf = await C.createClassifier(card, '/model/' + card.onnx.split('/').pop());
  const withWorld = card.inputs.some((i) => i.name === 'world');
  const w = new C.FrameWindow(card.window_policy.window, withWorld);
  for (let t = 0; t < card.window_policy.window; t++)
    w.push(t === 0 ? null : Float32Array.from(arg.image[t]), withWorld ? Float32Array.from(arg.world[t]) : null);
  // Warm up until V8 has finished tiering up the wasm (seconds on a busy machine), then time each run.
  const warm = performance.now();
  while (performance.now() - warm < arg.warmupMs) await clf.run(w);
  const each = [];
  const t0 = performance.now();
  for (let i = 0; i < arg.runs; i++) {
    const a = performance.now();
    await clf.run(w);
    each.push(performance.now() - a);
  }
  const mean = (performance.now() - t0) / arg.runs;
  each.sort((a, b) => a - b);
  const median = each[Math.floor(each.length / 2)];
  clf.close();
  return {mean_ms: mean, median_ms: median, p90_ms: each[Math.floor(each.length * 0.9)], runs: arg.runs};
}"""


def chromium_pss_mib() -> float:
    """Proportional set size of every Chromium process under this one (browser, GPU, renderers), MiB: what the browser
    and the page cost in memory (shared pages counted once). Linux /proc only."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, kib = list(children.get(os.getpid(), [])), 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                kib += int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))
        except (OSError, StopIteration):
            continue
    return kib / 1024


def snapshot(page) -> dict:
    return page.evaluate("() => window.musclevision.snapshot()")


def wait(page, predicate: str, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = snapshot(page)
        if snap["error"]:
            raise SystemExit(f"page error: {snap['error']}")
        if page.evaluate(f"(s) => ({predicate})(s)", snap):
            return snap
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def measure_page(browser, url: str, classifier: bool, seconds: float, warmup: float) -> dict:
    page = browser.new_page()
    try:
        page.goto(url + ("" if classifier else "?classifier=off"))
        wait(page, "(s) => s.ready && s.frames > 0", 60, "the page to run")
        time.sleep(warmup)
        s0 = snapshot(page)
        time.sleep(seconds)
        s1 = snapshot(page)
        memory = chromium_pss_mib()
    finally:
        page.close()
    frames = s1["frames"] - s0["frames"]
    elapsed = (s1["now"] - s0["now"]) / 1000
    pose = s1["poseSamples"][-frames:] if frames else []
    runs = s1["classifierRuns"] - s0["classifierRuns"]
    clf = s1["classifierSamples"][-runs:] if runs else []
    return {
        "fps": frames / elapsed if elapsed > 0 else 0.0,
        "frames": frames,
        "seconds": elapsed,
        "pose_ms_median": statistics.median(pose) if pose else None,
        "classifier_ms_median": statistics.median(clf) if clf else None,
        "classifier_ms_mean": (s1["classifierMsTotal"] - s0["classifierMsTotal"]) / runs if runs else None,
        "classifier_runs": runs,
        "chromium_pss_mib": memory,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, default=project_root() / "exports" / "best.json", help="model card")
    parser.add_argument("--clip", default=DEFAULT_CLIP, help=f"clip under the UCF101 videos folder (default {DEFAULT_CLIP})")
    parser.add_argument("--videos", type=Path, default=default_videos())
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per mode and round")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring, per page")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (pose only, pose + classifier)")
    parser.add_argument("--python-runs", type=int, default=2000)
    parser.add_argument("--web-runs", type=int, default=500)
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    try:
        site = load_site(args.export)
    except ServeError as exc:
        print(f"bench_page: {exc}", file=sys.stderr)
        return 2
    card = site.card
    clip = args.videos / args.clip
    for tool, hint in ((args.chromium, "make system-deps"), ("ffmpeg", "make system-deps")):
        if not (Path(tool).is_file() or any((Path(p) / tool).is_file() for p in os.environ["PATH"].split(":"))):
            print(f"bench_page: {tool} not found: run `{hint}`", file=sys.stderr)
            return 2
    if not clip.is_file():
        print(f"bench_page: clip {clip} not found (--videos / --clip)", file=sys.stderr)
        return 2

    print(f"python onnxruntime: {args.python_runs} runs ...", file=sys.stderr)
    py = bench_python_ort(site.onnx_path, card, args.python_runs)

    from playwright.sync_api import sync_playwright

    results = {"python_ort": py, "pose_only": [], "with_classifier": []}
    with tempfile.TemporaryDirectory(prefix="mv-bench-") as tmp:
        y4m = Path(tmp) / "clip.y4m"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-an", "-pix_fmt", "yuv420p", "-r", "25", str(y4m)], check=True
        )
        with serving(make_server(site, "127.0.0.1", 0)) as server:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS + fake_camera_args(Path(y4m)))
                version = browser.version
                blank = browser.new_page()
                time.sleep(2)
                results["chromium_pss_mib_blank"] = chromium_pss_mib()
                blank.close()
                for r in range(args.rounds):
                    for classifier in (False, True):
                        name = "with_classifier" if classifier else "pose_only"
                        print(f"round {r + 1}/{args.rounds}: {name} ...", file=sys.stderr)
                        results[name].append(measure_page(browser, server.url, classifier, args.seconds, args.warmup))
                print(f"onnxruntime-web: {args.web_runs} runs ...", file=sys.stderr)
                page = browser.new_page()
                page.goto(server.url + "?camera=off")
                wait(page, "(s) => s.ready", 60, "the page to load")
                feeds = sample_windows(card, 1, seed=1)
                arg = {
                    "image": np.nan_to_num(feeds["landmarks"][0]).reshape(card["window_policy"]["window"], -1).tolist(),
                    "world": np.nan_to_num(feeds["world"][0]).reshape(card["window_policy"]["window"], -1).tolist()
                    if "world" in feeds
                    else None,
                    "runs": args.web_runs,
                    "warmupMs": 3000,
                }
                results["ort_web"] = page.evaluate(ORT_WEB_BENCH, arg)
                page.close()
                browser.close()

    def total(rows, key):
        frames = sum(r["frames"] for r in rows)
        return (
            frames / sum(r["seconds"] for r in rows)
            if key == "fps"
            else statistics.median([r[key] for r in rows if r[key] is not None])
        )

    fps_off, fps_on = total(results["pose_only"], "fps"), total(results["with_classifier"], "fps")
    ratio = fps_on / fps_off if fps_off else 0.0
    per_round = [on["fps"] / off["fps"] for off, on in zip(results["pose_only"], results["with_classifier"]) if off["fps"]]
    web_ms = results["ort_web"]["mean_ms"]
    in_loop = total(results["with_classifier"], "classifier_ms_median")
    results.update(fps_pose_only=fps_off, fps_with_classifier=fps_on, fps_ratio=ratio, fps_ratio_per_round=per_round)
    ok_ratio, ok_web = ratio >= TARGET_FPS_RATIO, web_ms <= TARGET_ORT_WEB_MS

    print()
    print(
        f"MuscleVision page benchmark: model {card.get('name')!r} ({site.onnx_path.name}, "
        f"window {card['window_policy']['window']}, "
        f"{len(card['classes'])} classes), pose bundle {site.bundle_path.name}"
    )
    print(
        f"clip {args.clip} as the webcam; {args.rounds} rounds x {args.seconds:.0f} s per mode; "
        f"Chromium {version} headless; {os.cpu_count()} CPUs; Python {platform.python_version()}"
    )
    print()
    rows = [
        (
            "onnxruntime, Python CPU, 1 thread: ms/window",
            f"{py['median_ms']:.3f}",
            f"median of {py['runs']}, p90 {py['p90_ms']:.3f}",
            "",
        ),
        (
            "onnxruntime-web, wasm 1 thread: ms/window",
            f"{web_ms:.3f}",
            f"mean of {results['ort_web']['runs']} back-to-back after 3 s warm-up",
            f"<= {TARGET_ORT_WEB_MS:g} {'ok' if ok_web else 'MISSED'}",
        ),
        ("  same, in the page loop (median)", f"{in_loop:.2f}" if in_loop is not None else "-", "median, 0.1 ms timers", ""),
        (
            "page FPS, pose only (?classifier=off)",
            f"{fps_off:.2f}",
            "  ".join(f"{r['fps']:.1f}" for r in results["pose_only"]),
            "",
        ),
        ("page FPS, pose + classifier", f"{fps_on:.2f}", "  ".join(f"{r['fps']:.1f}" for r in results["with_classifier"]), ""),
        (
            "FPS ratio (with / without classifier)",
            f"{ratio:.3f}",
            "per round " + "  ".join(f"{r:.2f}" for r in per_round),
            f">= {TARGET_FPS_RATIO:g} {'ok' if ok_ratio else 'MISSED'}",
        ),
        ("pose ms/frame (median), pose only", f"{total(results['pose_only'], 'pose_ms_median'):.1f}", "", ""),
        (
            "Chromium memory (PSS, MiB), page running",
            f"{max(r['chromium_pss_mib'] for r in results['with_classifier']):.0f}",
            f"most over the rounds; pose only {max(r['chromium_pss_mib'] for r in results['pose_only']):.0f}, "
            f"a blank page {results['chromium_pss_mib_blank']:.0f}",
            "",
        ),
        ("pose ms/frame (median), with classifier", f"{total(results['with_classifier'], 'pose_ms_median'):.1f}", "", ""),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("measurement", "value", "detail", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if args.check and not (ok_ratio and ok_web) else 0


if __name__ == "__main__":
    sys.exit(main())
