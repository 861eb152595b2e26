// Exercise classifier: the exported ONNX model run by onnxruntime-web (wasm, one thread).
//
// Model contract (musclevision.card, generated into ./generated/contract.js): input "landmarks" float32
// [batch, time, 33, 4] = raw PoseLandmarker image landmarks of the window's slots, oldest first, NaN rows
// for slots without a person; optional input "world" [batch, time, 33, 3]; output "probabilities"
// [batch, classes] (softmax applied), in the order of the card's `classes`. The card's window_policy
// says how slots are taken from the frames (fps, window) and when a window is classified (min_detected).

import { CARD_FORMAT, CARD_SCHEMA, SKELETON } from "./generated/contract.js";
import { validate } from "./schema.js";

export const ORT_BASE = "/vendor/onnxruntime-web/dist/";
const IMAGE_SIZE = SKELETON.count * 4;
const WORLD_SIZE = SKELETON.count * 3;

/** The card itself, or throws an Error naming its first problem (the same schema Python validates with). */
export function validateCard(card) {
  if (card && typeof card === "object" && card.format !== CARD_FORMAT && /^musclevision-model-card\//.test(card.format))
    throw new Error(`model card: format ${JSON.stringify(card.format)} is from another musclevision version (this page reads ` +
      `"${CARD_FORMAT}"); re-export the model with musclevision-export`);
  const problem = validate(CARD_SCHEMA, card);
  if (problem) throw new Error(`model card: ${problem}`);
  return card;
}

export function usesWorld(card) {
  return card.inputs.some((i) => i.name === "world");
}

/**
 * The classifier's input window: `size` frames, oldest first, NaN rows for frames without a person.
 *
 * With `fps` (the card's training frame rate) and frame timestamps, the window is resampled in
 * time: slot k holds the pose at t_newest - (size-1-k)/fps, linearly interpolated between the
 * two processed frames around it (NaN if either has no person), as the training windows are
 * cut (data/windows.py). So a page that manages 15 or 40 frames/s still shows the model motion
 * at the speed it learned. Without `fps` it is simply the last `size` processed frames.
 */
export class FrameWindow {
  constructor(size, withWorld = false, fps = null) {
    this.size = size;
    this.withWorld = withWorld;
    this.stepMs = fps > 0 ? 1000 / fps : null;
    this.clear();
  }

  clear() {
    this.history = []; // {t, image, world}, oldest first
    this.count = 0;
  }

  get spanMs() {
    return this.stepMs === null ? 0 : (this.size - 1) * this.stepMs;
  }

  get full() {
    if (this.stepMs === null) return this.history.length >= this.size;
    const h = this.history;
    return h.length >= 2 && h[h.length - 1].t - h[0].t >= this.spanMs;
  }

  /** image: Float32Array(132) or null (no person); world: Float32Array(99) or null; t: milliseconds. */
  push(image, world, t = null) {
    const time = t ?? (this.history.length ? this.history[this.history.length - 1].t + (this.stepMs ?? 1) : 0);
    this.history.push({ t: time, image: image || null, world: image && world ? world : null });
    this.count += 1;
    // Keep what the next window can need: the frames inside its span plus one before it.
    if (this.stepMs === null) {
      if (this.history.length > this.size) this.history.shift();
    } else {
      while (this.history.length > 2 && this.history[1].t <= time - this.spanMs) this.history.shift();
    }
  }

  /** The frame rows of slot times, oldest first: [{a, b, w}] = interpolate frames a and b with weight w on b. */
  slots() {
    const h = this.history;
    if (this.stepMs === null) return h.map((_, i) => ({ a: i, b: i, w: 0 }));
    const newest = h[h.length - 1].t;
    const out = [];
    let j = 0;
    for (let k = 0; k < this.size; k++) {
      const t = newest - (this.size - 1 - k) * this.stepMs;
      while (j < h.length - 2 && h[j + 1].t <= t) j++;
      if (t <= h[j].t) out.push({ a: j, b: j, w: 0 });
      else if (t >= h[j + 1].t) out.push({ a: j + 1, b: j + 1, w: 0 });
      else out.push({ a: j, b: j + 1, w: (t - h[j].t) / (h[j + 1].t - h[j].t) });
    }
    return out;
  }

  /** How many slots of the current window have a person. */
  presentCount() {
    return this.slots().filter(({ a, b, w }) => this.history[a].image && (w === 0 || this.history[b].image)).length;
  }

  /** Fill `out.image` [size*132] (and `out.world`) with the window, oldest first. */
  ordered(out) {
    const slots = this.slots(); // once for both inputs
    const fill = (key, target, stride) => {
      slots.forEach(({ a, b, w }, k) => {
        const fa = this.history[a][key], fb = this.history[b][key];
        const row = target.subarray(k * stride, (k + 1) * stride);
        if (!fa || (w > 0 && !fb)) row.fill(NaN);
        else if (w === 0) row.set(fa);
        else for (let i = 0; i < stride; i++) row[i] = fa[i] + w * (fb[i] - fa[i]);
      });
    };
    fill("image", out.image, IMAGE_SIZE);
    if (this.withWorld) fill("world", out.world, WORLD_SIZE);
    return out;
  }
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (err) {
    throw new Error(`${what} ${url} could not be fetched (${err.message}); is musclevision-serve still running?`);
  }
  if (!response.ok) throw new Error(`${what} ${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

export async function loadOrt() {
  const ort = await import(ORT_BASE + "ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = ORT_BASE;
  ort.env.logLevel = "error";
  return ort;
}

/**
 * Load the card's ONNX model (`model`: its URL, or its bytes as a Uint8Array; `ort`: an onnxruntime-web
 * module, loaded from the page's origin when omitted); returns {run(frameWindow) -> Promise<Float32Array>,
 * inputNames, close}. `run` needs a full window; the probabilities are in the order of `card.classes`.
 */
export async function createClassifier(card, model, ort) {
  ort = ort || (await loadOrt());
  const onnxUrl = typeof model === "string" ? model : card.onnx;
  const bytes = typeof model === "string" ? await fetchBytes(model, "classifier model") : model;
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (err) {
    throw new Error(`classifier model ${onnxUrl} could not be loaded by onnxruntime-web: ${err.message || err}`);
  }
  const wanted = card.inputs.map((i) => i.name);
  const missing = wanted.filter((n) => !session.inputNames.includes(n));
  if (missing.length) throw new Error(`classifier model ${onnxUrl} has no input(s) ${missing.join(", ")} named by the card`);
  const outputName = session.outputNames.includes("probabilities") ? "probabilities" : session.outputNames[0];
  const T = card.window_policy.window, K = card.classes.length;
  const withWorld = wanted.includes("world");
  const buffers = { image: new Float32Array(T * IMAGE_SIZE), world: withWorld ? new Float32Array(T * WORLD_SIZE) : null };

  async function run(frames) {
    frames.ordered(buffers);
    const feeds = { landmarks: new ort.Tensor("float32", buffers.image, [1, T, SKELETON.count, 4]) };
    if (withWorld) feeds.world = new ort.Tensor("float32", buffers.world, [1, T, SKELETON.count, 3]);
    const out = await session.run(feeds);
    const probs = out[outputName];
    if (!probs || probs.data.length !== K)
      throw new Error(`classifier output has ${probs ? probs.data.length : 0} values, the card lists ${K} classes`);
    const result = Float32Array.from(probs.data);
    for (const t of Object.values(out)) t.dispose?.();
    return result;
  }

  return { run, inputNames: session.inputNames, outputName, close: () => session.release() };
}

export { fetchBytes };
