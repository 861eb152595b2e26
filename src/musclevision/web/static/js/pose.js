// Pose: MediaPipe tasks-vision PoseLandmarker (VIDEO mode), loaded from our own origin.
//
// The page's copy of the extractor's PoseTracker (src/musclevision/extract/landmarker.py), with the
// settings the training keypoints were made with (the model card's pose_model block):
// - rotations: when the landmarker of the current orientation finds no one, the frame is tried
//   turned by the other orientations (upright first, then `rotations` in order; degrees clockwise)
//   on a canvas; the first that finds someone becomes current; while no one is found anywhere, the
//   retries run on the first such frame and then every `retryEvery`-th. Landmarks are mapped back exactly
//   as extract/rotation.py does (x, y; z scaled by height/width for quarter turns; world x, y turned).
// - zoomOut > 1: when no orientation finds anyone, each is tried again with the (turned) frame in the
//   middle of a black canvas zoomOut times as large; the view that works (orientation and zoom) becomes
//   current. Landmarks map back by the inverse shift and scale (unpad), then the inverse turn, rounded
//   to float32 once, as the extractor does.
// - numPoses > 1: the exerciser among the people found is kept by exerciser.js (the same rule).
//   With peopleCheckS > 0 one person is tracked (numPoses 1 landmarkers) until a check (an IMAGE-mode
//   landmarker finding up to numPoses people in the current orientation: on the first frame, then
//   every peopleCheckS seconds) sees several distinct people; from that frame on several are followed.

import { fetchBytes } from "./classifier.js";
import { ExerciserSelector, distinctPeople } from "./exerciser.js";
import { CARD_SCHEMA, SKELETON } from "./generated/contract.js";

export const VISION_BASE = "/vendor/tasks-vision/";

// MediaPipe's wasm writes its native log lines to the browser console, one of them as an error ("INFO: Created
// TensorFlow Lite XNNPACK delegate for CPU."): noise nobody can act on, in red. quietMediaPipeLogs drops its info
// ("I") lines, two plain ones and the warnings it gives on every start with the CPU delegate (OpenGL error checking,
// the feedback manager, NORM_RECT); any other warning (a GPU delegate falling back, say), its errors and everything
// else pass.
export const MEDIAPIPE_LOG = new RegExp(
  "^(?:I\\d{4} \\d\\d:\\d\\d:\\d\\d\\.\\d+\\s+\\d+ [\\w.]+:\\d+\\]" +
    "|W\\d{4} \\d\\d:\\d\\d:\\d\\d\\.\\d+\\s+\\d+ (?:gl_context|inference_feedback_manager|landmark_projection_calculator)\\.cc:\\d+\\]" +
    "|INFO: Created TensorFlow Lite|Graph successfully started running\\.)",
);

export function quietMediaPipeLogs(target = globalThis.console) {
  if (target.musclevisionQuiet) return;
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    const original = target[level].bind(target);
    target[level] = (...args) => {
      if (!(typeof args[0] === "string" && MEDIAPIPE_LOG.test(args[0]))) original(...args);
    };
  }
  target.musclevisionQuiet = true;
}
const QUARTER_TURNS = [90, 180, 270];

/** `[padded width, padded height, x offset, y offset]` of a w x h frame zoomed out by `zoom` (extract/rotation.py padded_size). */
export function paddedSize(w, h, zoom) {
  const pw = Math.floor(w * zoom + 0.5), ph = Math.floor(h * zoom + 0.5);
  return [pw, ph, Math.floor((pw - w) / 2), Math.floor((ph - h) / 2)];
}

/** Image landmarks found in a w x h frame zoomed out by `zoom`, in that frame's coordinates (float64, rounded by unrotate). */
export function unpad(image, zoom, w, h) {
  const out = Float64Array.from(image);
  if (zoom === 1) return out;
  const [pw, ph, x0, y0] = paddedSize(w, h, zoom);
  for (let i = 0; i < out.length / 4; i++) {
    out[i * 4] = (out[i * 4] * pw - x0) / w;
    out[i * 4 + 1] = (out[i * 4 + 1] * ph - y0) / h;
    out[i * 4 + 2] *= pw / w; // z was in units of the padded width
  }
  return out;
}

/** Landmarks found in the frame turned `degrees` clockwise, in the original w x h frame (new arrays). */
export function unrotate(image, world, degrees, w, h) {
  const im = new Float32Array(image.length);
  const wo = new Float32Array(world.length);
  for (let i = 0; i < image.length / 4; i++) {
    const x = image[i * 4], y = image[i * 4 + 1], z = image[i * 4 + 2];
    let u = x, v = y, zz = z;
    if (degrees === 90) [u, v] = [y, 1.0 - x];
    else if (degrees === 180) [u, v] = [1.0 - x, 1.0 - y];
    else if (degrees === 270) [u, v] = [1.0 - y, x];
    if (degrees === 90 || degrees === 270) zz = z * (h / w);
    im[i * 4] = u;
    im[i * 4 + 1] = v;
    im[i * 4 + 2] = zz;
    im[i * 4 + 3] = image[i * 4 + 3];
  }
  for (let i = 0; i < world.length / 3; i++) {
    const x = world[i * 3], y = world[i * 3 + 1];
    let u = x, v = y;
    if (degrees === 90) [u, v] = [y, -x];
    else if (degrees === 180) [u, v] = [-x, -y];
    else if (degrees === 270) [u, v] = [-y, x];
    wo[i * 3] = u;
    wo[i * 3 + 1] = v;
    wo[i * 3 + 2] = world[i * 3 + 2];
  }
  return { image: im, world: wo };
}

/** People found in `view` ({degrees, zoom}) of a w x h frame, in that frame's coordinates (PoseTracker._back). */
export function mapBack(people, view, w, h) {
  if (view.degrees === 0 && view.zoom === 1) return people;
  const [rw, rh] = view.degrees === 90 || view.degrees === 270 ? [h, w] : [w, h]; // the turned frame
  return people.map((p) => unrotate(unpad(p.image, view.zoom, rw, rh), p.world, view.degrees, w, h));
}

function sourceSize(source) {
  if (source.videoWidth) return [source.videoWidth, source.videoHeight];
  return [source.width, source.height];
}

/** A canvas holding `source` turned `degrees` clockwise, pixel for pixel (integer matrix, no smoothing), in the
 * middle of a black canvas `zoom` times as large (zoom 1: the turned frame alone). */
export function makeViewer() {
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: false });
  let scratch = null; // ImageData cannot be drawn with a transform: put it on a canvas first
  return (source, w, h, degrees, zoom) => {
    if (source instanceof ImageData) {
      scratch = scratch || document.createElement("canvas");
      if (scratch.width !== w || scratch.height !== h) [scratch.width, scratch.height] = [w, h];
      scratch.getContext("2d").putImageData(source, 0, 0);
      source = scratch;
    }
    const [rw, rh] = degrees === 0 || degrees === 180 ? [w, h] : [h, w];
    const [pw, ph, x0, y0] = paddedSize(rw, rh, zoom);
    if (canvas.width !== pw || canvas.height !== ph) [canvas.width, canvas.height] = [pw, ph];
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pw, ph);
    ctx.imageSmoothingEnabled = false;
    // original (x, y) -> 0: (x, y); 90: (h - y, x); 180: (w - x, h - y); 270: (y, w - x); then shifted by (x0, y0)
    if (degrees === 0) ctx.setTransform(1, 0, 0, 1, x0, y0);
    else if (degrees === 90) ctx.setTransform(0, 1, -1, 0, x0 + rw, y0);
    else if (degrees === 180) ctx.setTransform(-1, 0, 0, -1, x0 + rw, y0 + rh);
    else ctx.setTransform(0, -1, 1, 0, x0, y0 + rh);
    ctx.drawImage(source, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    return canvas;
  };
}

// What a pose_model setting means when a card does not record it (a card from before the setting existed, e.g. no
// people_check_s: several people from the start): the card schema's defaults, as Python reads them (PoseModel.absent()).
const ABSENT = Object.fromEntries(
  Object.entries(CARD_SCHEMA.$defs.PoseModel.properties).flatMap(([key, p]) => ("default" in p ? [[key, p.default]] : [])),
);

/** createPose's options from the model card's pose_model block (the extractor's PoseSettings.cache_key()). */
export function poseOptions(pm) {
  const get = (key) => pm[key] ?? ABSENT[key];
  return {
    minDetection: get("min_pose_detection_confidence"),
    minPresence: get("min_pose_presence_confidence"),
    minTracking: get("min_tracking_confidence"),
    rotations: get("rotations"),
    retryEvery: get("retry_every"),
    zoomOut: get("zoom_out"),
    numPoses: get("num_poses"),
    peopleCheckS: get("people_check_s"),
    selector: get("selector"),
  };
}
const NO_CARD = poseOptions({}); // createPose's defaults: a card that records no setting

/**
 * Create the landmarkers from the served `.task` bundle and wasm fileset.
 * Returns {detect(source, timestampMs) -> {image: Float32Array(132), world: Float32Array(99)} | null,
 *          orientation() -> degrees now tracked, zoom() -> its zoom-out, people() -> count in the
 *          last frame, selector() -> the ExerciserSelector (or null), several() -> {fromMs, checks, checkedMax}
 *          (fromMs null while one person is followed), close()}.
 */
export async function createPose({
  bundleUrl, delegate = "CPU", minDetection = NO_CARD.minDetection, minPresence = NO_CARD.minPresence,
  minTracking = NO_CARD.minTracking, rotations = NO_CARD.rotations, retryEvery = NO_CARD.retryEvery,
  zoomOut = NO_CARD.zoomOut, numPoses = NO_CARD.numPoses, peopleCheckS = NO_CARD.peopleCheckS, selector = NO_CARD.selector,
}) {
  if (!Array.isArray(rotations) || rotations.some((r) => !QUARTER_TURNS.includes(r)) || new Set(rotations).size !== rotations.length)
    throw new Error(`pose_model.rotations ${JSON.stringify(rotations)} must list distinct quarter turns from 90, 180, 270`);
  if (!Number.isInteger(retryEvery) || retryEvery < 1) throw new Error(`pose_model.retry_every ${retryEvery} must be a whole number >= 1`);
  if (typeof zoomOut !== "number" || !(zoomOut >= 1 && zoomOut <= 4)) throw new Error(`pose_model.zoom_out ${zoomOut} must be a number from 1 (off) to 4`);
  if (!Number.isInteger(numPoses) || numPoses < 1) throw new Error(`pose_model.num_poses ${numPoses} must be a whole number >= 1`);
  if (typeof peopleCheckS !== "number" || !(peopleCheckS >= 0 && peopleCheckS <= 3600))
    throw new Error(`pose_model.people_check_s ${peopleCheckS} must be a number of seconds from 0 to 3600`);
  if (numPoses > 1) new ExerciserSelector(1, 1, selector); // fail now, not on the first frame, if the rule is unknown
  let vision;
  try {
    vision = await import(VISION_BASE + "vision_bundle.mjs");
  } catch (err) {
    throw new Error(`MediaPipe tasks-vision could not be loaded from ${VISION_BASE} (${err.message}); run \`make setup\``);
  }
  const bundle = await fetchBytes(bundleUrl, "pose bundle");
  const orientations = [0, ...rotations];
  const views = (zoomOut > 1 ? [1, zoomOut] : [1]).flatMap((zoom) => orientations.map((degrees) => ({ degrees, zoom, key: `${degrees}x${zoom}` })));
  const checkEveryMs = numPoses > 1 && peopleCheckS > 0 ? peopleCheckS * 1000.0 : null;
  let several = numPoses > 1 && checkEveryMs === null; // following several people now
  let severalFromMs = several ? 0 : null;
  let nextCheckMs = 0.0;
  let checks = 0;
  let checkedMax = 0;
  const landmarkers = new Map(); // `${view.key}/${people followed}` -> VIDEO-mode landmarker
  let checker = null; // IMAGE-mode landmarker of the several-people check
  let fileset;
  const make = (mode, poses) =>
    vision.PoseLandmarker.createFromOptions(fileset, {
      baseOptions: { modelAssetBuffer: bundle.slice(), delegate },
      runningMode: mode,
      numPoses: poses,
      minPoseDetectionConfidence: minDetection,
      minPosePresenceConfidence: minPresence,
      minTrackingConfidence: minTracking,
      outputSegmentationMasks: false,
    });
  const followed = () => (several ? numPoses : 1);
  quietMediaPipeLogs();
  try {
    fileset = await vision.FilesetResolver.forVisionTasks(VISION_BASE + "wasm");
    // Every landmarker the clip may need is made now (creating one later would stall the live loop).
    for (const view of views) {
      for (const poses of new Set([followed(), numPoses])) landmarkers.set(`${view.key}/${poses}`, await make("VIDEO", poses));
    }
    if (checkEveryMs !== null) checker = await make("IMAGE", numPoses);
  } catch (err) {
    for (const l of landmarkers.values()) l.close();
    if (checker) checker.close();
    throw new Error(`pose landmarker could not start with ${bundleUrl} (${delegate} delegate): ${err.message || err}`);
  }
  const viewer = makeViewer();
  const see = (source, w, h, view) => (view === views[0] ? source : viewer(source, w, h, view.degrees, view.zoom));
  let lastTs = -1;
  let current = views[0];
  let empty = 0; // frames in a row, up to the last one, where no view found anyone
  let picker = null;
  let lastPeople = 0;

  function run(landmarker, source, ts) {
    const people = [];
    const collect = (result) => {
      (result.landmarks || []).forEach((lm, k) => {
        const n = SKELETON.count;
        if (!lm || lm.length !== n) return;
        const image = new Float32Array(n * 4);
        const world = new Float32Array(n * 3).fill(NaN);
        for (let i = 0; i < n; i++) {
          const p = lm[i];
          image[i * 4] = p.x;
          image[i * 4 + 1] = p.y;
          image[i * 4 + 2] = p.z;
          image[i * 4 + 3] = p.visibility ?? NaN;
        }
        const wl = result.worldLandmarks && result.worldLandmarks[k];
        if (wl && wl.length === n) {
          for (let i = 0; i < n; i++) {
            world[i * 3] = wl[i].x;
            world[i * 3 + 1] = wl[i].y;
            world[i * 3 + 2] = wl[i].z;
          }
        }
        people.push({ image, world });
      });
    };
    if (ts === null) landmarker.detect(source, collect);
    else landmarker.detectForVideo(source, ts, collect);
    return people;
  }

  // Several distinct people in this frame (a fresh detection in the current orientation)? Then follow them from now on.
  function check(source, w, h, ts) {
    checks += 1;
    const found = mapBack(run(checker, see(source, w, h, current), null), current, w, h);
    const count = distinctPeople(found.map((p) => p.image), w, h, selector.gate);
    checkedMax = Math.max(checkedMax, count);
    if (count > 1) {
      several = true;
      severalFromMs = ts;
      for (const view of views) { // the one-person landmarkers and the checker are done with (as the extractor)
        landmarkers.get(`${view.key}/1`).close();
        landmarkers.delete(`${view.key}/1`);
      }
      checker.close();
      checker = null;
    } else nextCheckMs = ts + checkEveryMs;
  }

  function detect(source, timestampMs) {
    // VIDEO mode needs strictly increasing integer timestamps.
    const ts = Math.max(Math.round(timestampMs), lastTs + 1);
    lastTs = ts;
    const [w, h] = sourceSize(source);
    if (checkEveryMs !== null && !several && ts >= nextCheckMs) check(source, w, h, ts);
    let people = [];
    let found = null;
    const others = empty % retryEvery === 0 ? views.filter((v) => v !== current) : [];
    for (const view of [current, ...others]) {
      people = run(landmarkers.get(`${view.key}/${followed()}`), see(source, w, h, view), ts);
      if (people.length) {
        found = current = view;
        break;
      }
    }
    empty = people.length ? 0 : empty + 1;
    if (found) people = mapBack(people, found, w, h);
    lastPeople = people.length;
    let choice = people.length ? 0 : null;
    if (several) {
      if (!picker || picker.width !== w || picker.height !== h) picker = new ExerciserSelector(w, h, selector);
      choice = picker.update(people.map((p) => p.image), ts);
    }
    return choice === null ? null : people[choice];
  }

  return {
    detect,
    orientation: () => current.degrees,
    zoom: () => current.zoom,
    people: () => lastPeople,
    selector: () => picker,
    several: () => ({ fromMs: severalFromMs, checks, checkedMax }),
    close: () => {
      landmarkers.forEach((l) => l.close());
      if (checker) checker.close();
    },
  };
}
