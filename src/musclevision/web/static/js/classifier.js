// Exercise classifier: the exported ONNX model run by onnxruntime-web (wasm, one thread).
//
// Model contract (see the model card): input "landmarks" float32 [batch, time, 33, 4] = raw
// PoseLandmarker image landmarks of the last `window` frames, oldest first, NaN rows for frames
// without a person; optional input "world" [batch, time, 33, 3]; output "probabilities"
// [batch, classes] (softmax applied), in the order of the card's `classes`.

export const CARD_FORMAT = "musclevision-model-card/1";
export const ORT_BASE = "/vendor/onnxruntime-web/dist/";
const IMAGE_SIZE = 33 * 4;
const WORLD_SIZE = 33 * 3;

/** Throws an Error naming the first problem with a model card. */
export function validateCard(card) {
  const fail = (msg) => {
    throw new Error(`model card: ${msg}`);
  };
  if (!card || typeof card !== "object") fail("not a JSON object");
  if (card.format !== CARD_FORMAT) fail(`format is ${JSON.stringify(card.format)}, expected "${CARD_FORMAT}"`);
  const classes = card.classes;
  if (!Array.isArray(classes) || !classes.length || !classes.every((c) => typeof c === "string" && c))
    fail("'classes' must be a non-empty list of names");
  if (new Set(classes).size !== classes.length) fail("'classes' has duplicates");
  if (!Number.isInteger(card.window) || card.window < 1) fail("'window' must be a positive integer");
  const names = Array.isArray(card.inputs) ? card.inputs.map((i) => i && i.name) : [];
  if (names[0] !== "landmarks" || names.some((n) => n !== "landmarks" && n !== "world"))
    fail(`'inputs' must be "landmarks" (and optionally "world"), got ${JSON.stringify(names)}`);
  if (typeof card.onnx !== "string" || !card.onnx) fail("'onnx' is missing");
  if (!card.pose_model || typeof card.pose_model.bundle !== "string") fail("'pose_model.bundle' is missing");
  const t = card.no_exercise_threshold ?? 0.6;
  if (typeof t !== "number" || t < 0 || t > 1) fail("'no_exercise_threshold' must be in [0, 1]");
  return card;
}

export function usesWorld(card) {
  return card.inputs.some((i) => i.name === "world");
}

/** The last `size` processed frames (image and world landmarks), NaN rows for frames without a person. */
export class FrameWindow {
  constructor(size, withWorld = false) {
    this.size = size;
    this.withWorld = withWorld;
    this.image = new Float32Array(size * IMAGE_SIZE);
    this.world = withWorld ? new Float32Array(size * WORLD_SIZE) : null;
    this.clear();
  }

  clear() {
    this.next = 0; // ring position of the oldest frame once full
    this.count = 0;
    this.image.fill(NaN);
    if (this.world) this.world.fill(NaN);
  }

  get full() {
    return this.count >= this.size;
  }

  /** image: Float32Array(132) or null (no person); world: Float32Array(99) or null. */
  push(image, world) {
    const i = this.next;
    if (image) this.image.set(image, i * IMAGE_SIZE);
    else this.image.fill(NaN, i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE);
    if (this.world) {
      if (image && world) this.world.set(world, i * WORLD_SIZE);
      else this.world.fill(NaN, i * WORLD_SIZE, (i + 1) * WORLD_SIZE);
    }
    this.next = (i + 1) % this.size;
    this.count += 1;
  }

  /** How many of the buffered frames have a person. */
  presentCount() {
    let n = 0;
    for (let i = 0; i < Math.min(this.count, this.size); i++) if (!Number.isNaN(this.image[i * IMAGE_SIZE])) n++;
    return n;
  }

  /** Frames oldest first, as flat arrays ready for the tensors (written into `out` buffers). */
  ordered(out) {
    const copy = (ring, target, stride) => {
      const head = this.next * stride;
      target.set(ring.subarray(head), 0);
      target.set(ring.subarray(0, head), ring.length - head);
    };
    copy(this.image, out.image, IMAGE_SIZE);
    if (this.world) copy(this.world, out.world, WORLD_SIZE);
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
 * Load the card's ONNX model; returns {run(frameWindow) -> Promise<Float32Array>, inputNames, close}.
 * `run` needs a full window; the probabilities are in the order of `card.classes`.
 */
export async function createClassifier(card, onnxUrl, ort) {
  ort = ort || (await loadOrt());
  const bytes = await fetchBytes(onnxUrl, "classifier model");
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
  const T = card.window, K = card.classes.length;
  const withWorld = wanted.includes("world");
  const buffers = { image: new Float32Array(T * IMAGE_SIZE), world: withWorld ? new Float32Array(T * WORLD_SIZE) : null };

  async function run(frames) {
    frames.ordered(buffers);
    const feeds = { landmarks: new ort.Tensor("float32", buffers.image, [1, T, 33, 4]) };
    if (withWorld) feeds.world = new ort.Tensor("float32", buffers.world, [1, T, 33, 3]);
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
