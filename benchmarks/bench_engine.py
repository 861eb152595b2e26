"""What the page's engine costs per frame (Node 20, the page's own modules), next to what the pose model costs.

The engine (window, smoothing, states, every exercise's rep counter, session log) runs once per processed frame
in the page; the classifier is replaced by a constant answer here, so only the engine's own work is timed.

    python benchmarks/bench_engine.py [--frames 3000] [--engine other/web/static/js]   # compare two versions

Prints microseconds per frame for each engine given (this checkout's first); the page's pose model takes
~41 ms per frame on a laptop CPU (benchmarks/bench_page.py), so 0.2 ms is 0.5 % of a frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from musclevision.data.synthetic import synthesize_clip
from musclevision.paths import PACKAGE_DIR

PAGE_JS = PACKAGE_DIR / "web" / "static" / "js"
SCRIPT = """
import { readFileSync } from "node:fs";
const [dir, file, n, card] = process.argv.slice(2);
const { Engine } = await import(dir + "/engine.js");
const buf = readFileSync(file), frames = Number(n);
const image = new Float32Array(buf.buffer, buf.byteOffset, frames * 132);
const world = new Float32Array(buf.buffer, buf.byteOffset + frames * 132 * 4, frames * 99);
const probs = Float32Array.from(JSON.parse(card).classes.map((_, i) => (i === 1 ? 0.96 : 0.01)));
const run = async () => {
  const engine = new Engine(JSON.parse(card), { classify: async () => probs });
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    const img = image.subarray(i * 132, (i + 1) * 132);
    const det = Number.isNaN(img[0]) ? null : { image: img, world: world.subarray(i * 99, (i + 1) * 99) };
    await engine.step(i * 40, det, 4 / 3);
  }
  return ((performance.now() - t0) / frames) * 1000;
};
await run(); // warm-up (JIT)
const times = [await run(), await run(), await run()].sort((a, b) => a - b);
console.log(JSON.stringify({ us_per_frame: times[1] }));
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--engine", action="append", default=[], help="another folder of the page's modules to time too")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clips = [synthesize_clip(label, rng, seconds=args.frames / 25 / 3 + 1) for label in ("BodyWeightSquats", "PushUps", "Lunges")]
    image = np.concatenate([c.image for c in clips])[: args.frames]
    world = np.concatenate([c.world for c in clips])[: args.frames]
    card = json.loads((Path(__file__).resolve().parents[1] / "exports" / "best.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "frames.bin"
        data.write_bytes(image.astype("<f4").tobytes() + world.astype("<f4").tobytes())
        script = Path(tmp) / "bench.mjs"
        script.write_text(SCRIPT)
        print(f"engine per frame ({len(image)} frames of synthetic squats, push-ups, lunges; median of 3 runs):")
        for name, folder in [("this checkout", PAGE_JS)] + [(e, Path(e)) for e in args.engine]:
            done = subprocess.run(["node", str(script), str(folder.resolve()), str(data), str(len(image)), json.dumps(card)],
                                  capture_output=True, text=True)  # fmt: skip
            if done.returncode != 0:  # node's own last lines, not the command (it holds the whole model card)
                lines = done.stderr.strip().splitlines()
                error = next((line.strip() for line in lines if "Error" in line), lines[-1] if lines else "no output")
                raise SystemExit(f"bench_engine: the engine in {folder} did not run (node exit {done.returncode}): {error}")
            print(f"  {name:40s} {json.loads(done.stdout)['us_per_frame']:8.1f} us")


if __name__ == "__main__":
    main()
