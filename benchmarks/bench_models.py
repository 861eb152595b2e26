"""Benchmark exported classifiers per window: onnxruntime-web (wasm, one thread, in Node 20) and Python onnxruntime.

Side by side, in one run, models taken in turns (round-robin) so background load hits them alike; the first model is
the reference for the ratio column:

    python benchmarks/bench_models.py                                  # exports/best.json alone
    python benchmarks/bench_models.py exports/best.json exports/gcn.json exports/ensemble.json --check

Each argument is a model card (its ONNX file beside it) or an ONNX file (window 8, inputs read from the graph).
Prints the median (and p10) milliseconds per window; with --check the exit code is 1 when a model misses
--target-ms in onnxruntime-web. The page runs the same onnxruntime-web build (wasm, SIMD, one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from bench_page import sample_windows

from musclevision.paths import project_root

TARGET_ORT_WEB_MS = 2.0

NODE_BENCH = """
import { readFileSync } from "node:fs";
const ort = await import("onnxruntime-web");
ort.env.wasm.numThreads = 1;
const arg = JSON.parse(readFileSync(0, "utf8"));
const models = [];
for (const m of arg.models) {
  const session = await ort.InferenceSession.create(readFileSync(m.onnx), { executionProviders: ["wasm"] });
  const feeds = {};
  for (const [name, f] of Object.entries(m.feeds))
    feeds[name] = new ort.Tensor("float32", Float32Array.from(f.data, (x) => (x === null ? NaN : x)), f.shape);
  models.push({ session, feeds, times: [] });
}
// Warm up until V8 has tiered up the wasm, then time single windows, the models taking turns.
const warm = performance.now();
while (performance.now() - warm < arg.warmupMs) for (const m of models) await m.session.run(m.feeds);
for (let round = 0; round < arg.rounds; round++)
  for (const m of models)
    for (let i = 0; i < arg.runs; i++) {
      const a = performance.now();
      await m.session.run(m.feeds);
      m.times.push(performance.now() - a);
    }
process.stdout.write(JSON.stringify(models.map((m) => m.times)));
"""


def describe(path: Path) -> tuple[Path, dict]:
    """(onnx path, card-like dict with window_policy.window and inputs) for a card or a bare ONNX file."""
    if path.suffix == ".json":
        card = json.loads(path.read_text())
        return path.parent / card["onnx"], card
    graph = onnx.load(str(path))
    return path, {"window_policy": {"window": 8}, "inputs": [{"name": i.name} for i in graph.graph.input]}


def graph_nodes(onnx_path: Path) -> int:
    """Nodes of the ONNX graph as exported (each costs a kernel launch in onnxruntime-web, whatever its size)."""
    return len(onnx.load(str(onnx_path)).graph.node)


def bench_python(onnx_path: Path, feeds: dict, runs: int) -> list[float]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    for _ in range(50):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench_web(models: list[tuple[Path, dict]], runs: int, rounds: int, warmup_s: float) -> list[list[float]]:
    def tensor(v: np.ndarray) -> dict:  # JSON has no NaN: null, turned back into NaN in Node
        return {"data": [None if np.isnan(x) else float(x) for x in v.ravel()], "shape": list(v.shape)}

    arg = {"models": [{"onnx": str(path.resolve()), "feeds": {k: tensor(v) for k, v in feeds.items()}} for path, feeds in models],
           "runs": runs, "rounds": rounds, "warmupMs": warmup_s * 1000}  # fmt: skip
    done = subprocess.run(["node", "--input-type=module", "-e", NODE_BENCH], input=json.dumps(arg), capture_output=True,
                          text=True, cwd=project_root(), timeout=1800)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"onnxruntime-web in Node failed (run `make setup` for node_modules):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="model cards (.json) or ONNX files; default exports/best.json")
    parser.add_argument("--runs", type=int, default=100, help="timed windows per model and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the models taking turns")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up in Node")
    parser.add_argument("--target-ms", type=float, default=TARGET_ORT_WEB_MS, help="onnxruntime-web target per window")
    parser.add_argument("--check", action="store_true", help="exit 1 when a model misses the target")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    paths = args.models or [project_root() / "exports" / "best.json"]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"bench_models: {missing[0]} does not exist")
    models = []
    for path in paths:
        onnx_path, card = describe(path)
        feeds = {k: v[:1] for k, v in sample_windows(card, 1).items() if k in {i["name"] for i in card["inputs"]}}
        models.append((path, onnx_path, feeds))
    print(f"onnxruntime-web (Node, wasm, 1 thread): {args.rounds} rounds x {args.runs} windows per model ...", file=sys.stderr)
    web = bench_web([(o, f) for _, o, f in models], args.runs, args.rounds, args.warmup)
    rows = []
    for (path, onnx_path, feeds), web_times in zip(models, web, strict=True):
        py_times = bench_python(onnx_path, feeds, args.runs * args.rounds)
        rounds = [statistics.median(web_times[i : i + args.runs]) for i in range(0, len(web_times), args.runs)]
        rows.append({"model": str(path), "nodes": graph_nodes(onnx_path),
                     "web_median_ms": statistics.median(web_times), "web_best_round_ms": min(rounds),
                     "web_p10_ms": float(np.percentile(web_times, 10)), "python_median_ms": statistics.median(py_times),
                     "python_p10_ms": float(np.percentile(py_times, 10))})  # fmt: skip
    reference = rows[0]["web_best_round_ms"]
    print(f"{'model':<36} {'nodes':>5}  {'ort-web ms: median':>18} {'best round':>10} {'p10':>6} {'x ref':>6}  "
          f"{'python ms: median':>17} {'p10':>6}")  # fmt: skip
    for row in rows:
        print(f"{Path(row['model']).name:<36} {row['nodes']:>5}  {row['web_median_ms']:>18.3f} {row['web_best_round_ms']:>10.3f} "
              f"{row['web_p10_ms']:>6.3f} {row['web_best_round_ms'] / reference:>6.2f}  {row['python_median_ms']:>17.3f} "
              f"{row['python_p10_ms']:>6.3f}")  # fmt: skip
    print(
        f"target: <= {args.target_ms} ms per window (median) in onnxruntime-web; 'x ref': best-round medians against the "
        "first model (on a busy machine the ratios are the steadier numbers)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    missed = [r for r in rows if r["web_median_ms"] > args.target_ms]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
