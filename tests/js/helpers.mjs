// Shared by the engine's Node unit tests: a valid model card, fake classifiers, skeleton frames with known joint
// angles, and runners that feed timed frames to the engine.

import { SKELETON } from "../../src/musclevision/web/static/js/generated/contract.js";

export const CLASSES = ["BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups"];

export function card(policy = {}, classes = CLASSES) {
  return {
    format: "musclevision-model-card/2",
    name: "test",
    onnx: "test.onnx",
    classes,
    inputs: [
      { name: "landmarks", shape: ["batch", "time", 33, 4], dtype: "float32", missing: "nan" },
      { name: "world", shape: ["batch", "time", 33, 3], dtype: "float32", missing: "nan" },
    ],
    outputs: [{ name: "probabilities", shape: ["batch", classes.length], dtype: "float32" }],
    opset: 17,
    window_policy: { fps: 25, window: 8, min_detected: 4, smoothing_s: 0.3, threshold: 0.6, ...policy },
    pose_model: { variant: "full", bundle: "pose_landmarker_full.task", bundle_sha256: "ab".repeat(32) },
    training: { data_kind: "real" },
  };
}

/** A classifier that answers `probs(tMs)` (an array in class order), recording each window it was asked about. */
export function fakeClassifier(probs) {
  const calls = [];
  let now = 0;
  const classify = async (frames) => {
    calls.push({ t: now, present: frames.presentCount() });
    return Float32Array.from(probs(now));
  };
  return { classify, calls, at: (t) => (now = t) };
}

export const onehot = (name, p = 0.97, classes = CLASSES) =>
  classes.map((c) => (c === name ? p : (1 - p) / (classes.length - 1)));

const I = Object.fromEntries(SKELETON.names.map((n, i) => [n, i]));

/** One PoseLandmarker frame ({image, world}) whose knees and elbows bend to the given angles (degrees, 180 =
 * straight), both sides alike; `visibility` for every landmark, or per landmark name. */
export function frame({ knee = 175, elbow = 175, visibility = 0.99 } = {}) {
  const image = new Float32Array(33 * 4).fill(0.5);
  const world = new Float32Array(33 * 3).fill(0);
  for (let i = 0; i < 33; i++) image[i * 4 + 3] = typeof visibility === "number" ? visibility : visibility[SKELETON.names[i]] ?? 0.99;
  const put = (name, x, y, z = 0) => world.set([x, y, z], I[name] * 3);
  const rad = (d) => (d * Math.PI) / 180;
  for (const [side, x] of [["left", 0.1], ["right", -0.1]]) {
    put(`${side}_hip`, x, 0);
    put(`${side}_knee`, x, 0.45);
    put(`${side}_ankle`, x + 0.45 * Math.sin(rad(knee)), 0.45 - 0.45 * Math.cos(rad(knee)));
    put(`${side}_shoulder`, x * 1.8, -0.5);
    put(`${side}_elbow`, x * 1.8, -0.2);
    put(`${side}_wrist`, x * 1.8 + 0.25 * Math.sin(rad(elbow)), -0.2 - 0.25 * Math.cos(rad(elbow)));
  }
  return { image, world };
}

/** Timed frames of `reps` cycles of a joint going from `top` to `bottom` degrees and back (rest = top). */
export function cycles({ joint = "knee", reps = 5, period = 2.0, fps = 25, top = 170, bottom = 90, lead = 0.5, tail = 0.5 }) {
  const out = [];
  const seconds = lead + reps * period + tail;
  for (let t = 0; t < seconds; t += 1 / fps) {
    const inside = t >= lead && t < lead + reps * period;
    const phase = inside ? ((t - lead) / period) * 2 * Math.PI : 0;
    const angle = top - ((top - bottom) * (1 - Math.cos(phase))) / 2;
    out.push([t * 1000, frame({ [joint]: angle })]);
  }
  return out;
}

/** Feed [tMs, frame or null] pairs to the engine; returns the per-frame states, labels and counted reps. */
export async function run(engine, frames, classifier = null) {
  const trace = [];
  for (const [t, f] of frames) {
    classifier?.at(t);
    await engine.step(t, f);
    trace.push({ t, state: engine.state, label: engine.label, counting: engine.counting, rep: engine.rep,
                 credited: [...engine.log.credited] });
  }
  return trace;
}
