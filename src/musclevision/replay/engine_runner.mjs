// musclevision-replay's Node side: the page's own engine (web/static/js/engine.js) on recorded keypoints.
//
// stdin, one JSON object per line. The first: {card, onnx (path), ort (path of onnxruntime-web's
// ort.wasm.min.mjs), options (Engine options: threshold, smoothingS, ...), engine (optional: another
// folder of the page's modules, e.g. an older version to compare with)}. Every next one is a clip:
// {id, file, frames, mode, aspect, origin_ms (epoch ms of the video's t = 0 when known, else null: the log then has
// no wall-clock times)}, where `file` holds float64 timestamps_ms [frames], then float32
// image [frames, 33, 4], then float32 world [frames, 33, 3] (NaN rows: no person). For each clip one
// JSON line goes to stdout: the per-frame trace, the rep events and the session log (rows, CSV, JSON),
// or {id, error}. One process serves a whole batch: the model is loaded once.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

import { SKELETON } from "../web/static/js/generated/contract.js";

let createClassifier, validateCard, Engine; // the page's modules (setup.engine, or this package's)

const IMAGE = SKELETON.count * 4, WORLD = SKELETON.count * 3;
const send = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const round = (v, digits = 5) => (v === null || v === undefined ? null : Number(v.toFixed(digits)));

function readClip(job) {
  const buffer = readFileSync(job.file);
  const n = job.frames;
  const expected = n * 8 + n * (IMAGE + WORLD) * 4;
  if (buffer.length !== expected) throw new Error(`${job.file}: ${buffer.length} bytes, expected ${expected} for ${n} frames`);
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length).slice(); // aligned copy
  return {
    times: new Float64Array(bytes.buffer, 0, n),
    image: new Float32Array(bytes.buffer, n * 8, n * IMAGE),
    world: new Float32Array(bytes.buffer, n * 8 + n * IMAGE * 4, n * WORLD),
  };
}

async function replay(setup, classifier, job) {
  const { times, image, world } = readClip(job);
  const engine = new Engine(setup.card, {
    ...setup.options,
    mode: job.mode || "auto",
    classify: classifier ? (frames) => classifier.run(frames) : null,
    log: { ...(setup.options.log || {}), originMs: job.origin_ms ?? null },
  });
  const classes = engine.classes;
  const trace = { t: [], state: [], label: [], counting: [], probabilities: [], raw: [] };
  const events = [];
  for (let i = 0; i < job.frames; i++) {
    const img = image.subarray(i * IMAGE, (i + 1) * IMAGE);
    const det = Number.isNaN(img[0]) ? null : { image: img, world: world.subarray(i * WORLD, (i + 1) * WORLD) };
    const t = times[i];
    const before = engine.raw;
    await engine.step(t, det, job.aspect || 1);
    trace.t.push(t);
    trace.state.push(engine.state);
    trace.label.push(engine.label);
    trace.counting.push(engine.counting);
    trace.probabilities.push(engine.probabilities ? classes.map((c) => round(engine.probabilities[c])) : null);
    trace.raw.push(engine.raw && engine.raw !== before ? classes.map((c) => round(engine.raw[c])) : null);
    // reps from before the exercise was recognised, booked into its new bout by this step: at their own time
    for (const r of engine.log.credited ?? []) events.push({ t: r.t, exercise: r.exercise });
    if (engine.rep) events.push({ t, exercise: engine.rep });
  }
  events.sort((a, b) => a.t - b.t);
  engine.log.close?.(); // the video ended: so did its last bout
  const rows = engine.log.rows();
  for (const row of rows) {
    // modules older than session format 2 give wall-clock times only: back to seconds in the video
    if (row.start_s === undefined) row.start_s = (Date.parse(row.start) - performance.timeOrigin) / 1000;
    if (row.end_s === undefined) row.end_s = (Date.parse(row.end) - performance.timeOrigin) / 1000;
  }
  return {
    id: job.id,
    classes,
    trace,
    events,
    rows,
    csv: engine.log.toCSV(),
    json: engine.log.toJSON({ video: job.id, model: { name: setup.card.name, classes }, threshold: engine.policy.threshold,
      counting_mode: engine.mode }),
  };
}

async function main() {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let setup = null, classifier = null;
  for await (const line of lines) {
    if (!line.trim()) continue;
    const message = JSON.parse(line);
    if (setup === null) {
      setup = message;
      setup.options ||= {};
      const dir = setup.engine ? pathToFileURL(setup.engine + "/").href : new URL("../web/static/js/", import.meta.url).href;
      ({ createClassifier, validateCard } = await import(dir + "classifier.js"));
      ({ Engine } = await import(dir + "engine.js"));
      validateCard(setup.card);
      if (setup.onnx) {
        const ort = await import(pathToFileURL(setup.ort).href);
        ort.env.wasm.numThreads = 1;
        ort.env.logLevel = "error";
        classifier = await createClassifier(setup.card, new Uint8Array(readFileSync(setup.onnx)), ort);
      }
      send({ ready: true, classes: setup.card.classes, policy: setup.card.window_policy });
      continue;
    }
    try {
      send(await replay(setup, classifier, message));
    } catch (err) {
      send({ id: message.id, error: String(err && err.message ? err.message : err) });
    }
  }
}

main().catch((err) => {
  process.stderr.write(`engine runner: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
