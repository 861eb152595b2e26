// Rep counting from one body signal per exercise: smoothing, an adaptive range and hysteresis.
//
// A frame is {image: Float32Array(33 * 4), world: Float32Array(33 * 3), aspect} as PoseLandmarker gives it
// (image: x, y normalized, z, visibility; world: metres, hip-centred; aspect: the frame's width / height,
// 1 when absent), or null when no person was found. Signals are measured on both sides of the body
// (averaged, weighted by how visible each side is): joint angles on the world landmarks (3D, so the same
// from any camera angle) and the arms' extension in the image; joints come from the one skeleton
// (generated/contract.js SKELETON.joints). An exercise is counted on one signal, or on the stronger of
// several (the arm exercises: see EXERCISE_SIGNALS).
//
// The counter smooths the signal (time-aware exponential moving average), tracks its min/max over the
// last few seconds, and maps the current value to a position in [0, 1] of that range. A rep is one full
// cycle from rest back to rest: the position must go below `low` and then back above `high` (hysteresis),
// the range must be at least the signal's `minAmplitude` (so standing still or keypoint jitter never
// counts) and reps closer than `minRepSeconds` are merged. Every signal is oriented so that the
// exercise's rest position is the *high* end (legs straight when standing, arms extended for push-ups /
// bench press): a rep counts on returning to it, so a clip that starts at the bottom does not count that
// half rep, and a rep is counted as soon as it is done.

import { SKELETON } from "./generated/contract.js";

const MIN_WEIGHT = 0.05; // a side's weight in the average even when MediaPipe calls it invisible

function vis(image, i) {
  const v = image[i * 4 + 3];
  return Number.isFinite(v) ? v : 0;
}

/** Angle (degrees) at the middle landmark of `joint` ([a, b, c] indices), on world landmarks [33 * 3]. */
function angle3(world, [a, b, c]) {
  const u0 = world[a * 3] - world[b * 3], u1 = world[a * 3 + 1] - world[b * 3 + 1], u2 = world[a * 3 + 2] - world[b * 3 + 2];
  const v0 = world[c * 3] - world[b * 3], v1 = world[c * 3 + 1] - world[b * 3 + 1], v2 = world[c * 3 + 2] - world[b * 3 + 2];
  const d = Math.hypot(u0, u1, u2) * Math.hypot(v0, v1, v2);
  if (!(d > 1e-12)) return NaN;
  return (Math.acos(Math.max(-1, Math.min(1, (u0 * v0 + u1 * v1 + u2 * v2) / d))) * 180) / Math.PI;
}

/** How far the wrist is from the shoulder in the image, over the arm's length there (upper arm + forearm): 1 with
 * the arm straight across the image, smaller as the elbow bends or the arm points along the camera's axis.
 * `[a, b, c]`: shoulder, elbow, wrist indices; x is scaled by the frame's aspect (normalized x, y are not square). */
function extension2(frame, [a, b, c]) {
  const im = frame.image, k = frame.aspect || 1;
  const d = (i, j) => Math.hypot((im[i * 4] - im[j * 4]) * k, im[i * 4 + 1] - im[j * 4 + 1]);
  const arm = d(a, b) + d(b, c);
  return arm > 1e-9 ? d(a, c) / arm : NaN;
}

/** A left/right joint pair's `measure` (default: the world angle), both sides averaged, weighted by visibility (the
 * least visible of each side's three landmarks). World landmarks are estimated for hidden joints too, and their
 * angles stay usable: a hidden side only counts less. */
function bothSides(frame, name, measure = (f, joint) => angle3(f.world, joint)) {
  let sum = 0, weight = 0;
  for (const side of ["left_", "right_"]) {
    const joint = SKELETON.joints[side + name];
    const w = Math.max(MIN_WEIGHT, Math.min(...joint.map((i) => vis(frame.image, i))));
    const a = measure(frame, joint);
    if (Number.isFinite(a)) {
      sum += w * a;
      weight += w;
    }
  }
  return weight > 0 ? sum / weight : NaN;
}

const jointLandmarks = (...names) => [...new Set(names.flatMap((n) => [...SKELETON.joints["left_" + n], ...SKELETON.joints["right_" + n]]))];

// minAmplitude (degrees): the smallest fall that is a rep. Chosen with `recover` on the reference clips
// (benchmarks/references: UCFRep + our counts, 89 clips): groups 08-16 alone pick the same values, which give a
// normalized MAE of 0.20 there and 0.14 on groups 17-25. Elbows move less than knees in these clips (wall
// push-ups, push-ups filmed from the front, where MediaPipe's 3D elbow angle varies little).
export const SIGNALS = Object.freeze({
  kneeAngle: {
    label: "knee angle",
    minAmplitude: 30,
    landmarks: jointLandmarks("knee"),
    fn: (frame) => bothSides(frame, "knee"),
  },
  elbowAngle: {
    label: "elbow angle",
    minAmplitude: 15,
    landmarks: jointLandmarks("elbow"),
    fn: (frame) => bothSides(frame, "elbow"),
  },
  hipAngle: {
    label: "hip angle",
    minAmplitude: 30,
    landmarks: jointLandmarks("hip"),
    fn: (frame) => bothSides(frame, "hip"),
  },
  // 0.12 of the arm's length, set before measuring; on the bench-press reference clips, counted on alone, 1.4x of it
  // counted worse and 0.7x no better (exact counts).
  armExtension: {
    label: "arm extension",
    minAmplitude: 0.12,
    landmarks: jointLandmarks("elbow"),
    fn: (frame) => bothSides(frame, "elbow", extension2),
  },
});

// The signals each known exercise is counted on (several: the one that moves most, relative to its minimum
// amplitude, leads); other class names are matched by keyword, anything else uses all signals ("auto").
// Arm exercises: the world elbow angle or the arms' extension in the image, whichever moves more. MediaPipe's 3D
// elbow is poor where the arm points along the camera's axis or the body lies down (push-ups filmed head-on, wall
// push-ups, bench press); the image extension is poor where the arm bends toward the camera. Measured on the
// reference clips (benchmarks/report_page.py), exact counts, elbow angle alone -> the stronger of the two: wall
// push-ups, push-ups and bench press each gain or tie in groups 08-16 and in groups 17-25.
const ARMS = Object.freeze(["elbowAngle", "armExtension"]);
export const EXERCISE_SIGNALS = Object.freeze({
  BodyWeightSquats: ["kneeAngle"],
  Lunges: ["kneeAngle"],
  PushUps: ARMS,
  WallPushups: ARMS,
  BenchPress: ARMS,
});
const KEYWORD_SIGNALS = [
  [/squat|lunge|sit.?to.?stand|step.?up/i, ["kneeAngle"]],
  [/deadlift|good.?morning|hinge|crunch|sit.?up/i, ["hipAngle"]],
  [/push|press|dip|curl|row|pull|extension|raise/i, ARMS],
];

// Exercises whose reps can be faster than DEFAULTS.minRepSeconds: push-ups, 0.5-0.6 s a rep in some reference clips,
// were merged two into one (g09_c01 and g20_c01: 2 of 4 counted, now 3). Chosen like the merge itself
// (benchmarks/report_page.py, exercise given): among 0.4-0.7 s for push-ups alone, groups 08-16 pick 0.4 (0.4 and 0.5
// tie: the smaller kept), groups 17-25 confirm it; all 89 clips NMAE 0.120 -> 0.114, within one 91.0 -> 93.3 %, exact
// unchanged (75.3 %). 0.4 or 0.5 s for all three arm exercises lost bench press: a jittery fit under the bar dips twice.
export const EXERCISE_OPTIONS = Object.freeze({ PushUps: Object.freeze({ minRepSeconds: 0.4 }) });
// Other class names get those options by keyword, as they get their signals: a model trained on "PushUp" or "push-ups"
// counts push-ups as PushUps does (a wall push-up is slower: it keeps the defaults).
const KEYWORD_OPTIONS = [[/^(?!.*wall).*push.?ups?$/i, "PushUps"]];

/** The counting options of `exercise` (EXERCISE_OPTIONS by its name, else by keyword; {} for the defaults). */
export function optionsFor(exercise) {
  if (EXERCISE_OPTIONS[exercise]) return { ...EXERCISE_OPTIONS[exercise] };
  for (const [re, known] of KEYWORD_OPTIONS) if (re.test(exercise)) return { ...EXERCISE_OPTIONS[known] };
  return {};
}

/** The names of the signals `exercise` is counted on (keys of SIGNALS). */
export function signalsFor(exercise) {
  if (EXERCISE_SIGNALS[exercise]) return [...EXERCISE_SIGNALS[exercise]];
  for (const [re, names] of KEYWORD_SIGNALS) if (re.test(exercise)) return [...names];
  return Object.keys(SIGNALS);
}

export const DEFAULTS = Object.freeze({
  tauSeconds: 0.12, // smoothing time constant
  spanSeconds: 6, // the range shown (and "auto"'s choice of signal) is min/max of the smoothed signal over this long
  // A rep counts when the signal is back up this share of the way from its bottom to where it started. (0.4, with
  // the 0.5 s merge: 78.7 % of the reference clips counted exactly against 75.3 %, but the synthetic clips'
  // unfinished last reps counted too: exact 70 -> 62.5 %. Not kept.)
  recover: 0.5,
  // Two reps closer than this are one: a second dip of a jittery fit on the way back up is not a rep. Chosen on the
  // 89 reference clips, exercise given (benchmarks/report_page.py), by groups 08-16 alone among 0.5-0.9 s (ties: the
  // smaller kept), groups 17-25 confirming. On the keypoints of the zoom-out extractor (the default now), 0.7 against
  // 0.6: normalized MAE 0.136 -> 0.120 (08-16: 0.151 -> 0.138, 0.7-0.9 tie; 17-25: 0.120 -> 0.101), within one 89.9 ->
  // 91.0 %, exact 71.9 -> 75.3 %; on the keypoints before it, 08-16 had picked 0.6 (0.132 against 0.134 at 0.7). The
  // synthetic clips' counts do not change. It caps the count at 86 reps a minute; the fastest reference clip
  // (push-ups g08_c01, 0.47 s a rep) was already undercounted.
  minRepSeconds: 0.7,
  resetAfterSeconds: 2, // a gap this long (no person) starts afresh
  low: 0.3, // (display only: the band drawn on the signal's range)
  high: 0.7,
});

/**
 * Counts reps on one scalar signal (rest = high). Feed values with `updateValue` or frames with `update`.
 *
 * Each rep is measured against itself, not against a range: from the highest point since the last rep the
 * signal must fall by at least the signal's `minAmplitude` (going down), then come back up by `recover` of
 * that fall (and at least `minAmplitude`) to count. So a rep counts when it is done, reps of different depth
 * (a shallow one after deep ones, left and right lunges) all count, the half rep of a clip that starts at the
 * bottom does not (nothing fell first), and neither does jitter or a slow drift smaller than minAmplitude.
 */
export class SignalCounter {
  constructor(signal, options = {}) {
    this.signal = signal; // entry of SIGNALS, or {minAmplitude} for raw values
    this.opt = { ...DEFAULTS, ...options };
    this.reset();
  }

  reset() {
    this.history = []; // [tMs, smoothed]
    this.smoothed = null;
    this.lastT = null;
    this.phase = null; // "up" (waiting for a fall) | "down" (fallen: waiting to recover) | null
    this.top = null; // the highest value since the last rep (or the start)
    this.bottom = null; // the lowest value of the current fall
    this.lastRepT = -Infinity;
  }

  /** Lowest and highest smoothed value over the last spanSeconds (for display, and "auto"'s choice); null if none. */
  get min() {
    return this.history.length ? Math.min(...this.history.map((h) => h[1])) : null;
  }

  get max() {
    return this.history.length ? Math.max(...this.history.map((h) => h[1])) : null;
  }

  get amplitude() {
    return this.history.length ? this.max - this.min : 0;
  }

  /** Relative motion: range / the signal's minimum amplitude (>= 1 means reps can count). */
  get strength() {
    return this.amplitude / this.signal.minAmplitude;
  }

  update(frame, tMs) {
    return this.updateValue(frame ? this.signal.fn(frame) : NaN, tMs);
  }

  /** Add one sample; returns true when it completes a rep. NaN samples are skipped. */
  updateValue(value, tMs) {
    const o = this.opt;
    if (this.lastT !== null && tMs - this.lastT > o.resetAfterSeconds * 1000) this.reset();
    if (!Number.isFinite(value)) return false;
    if (this.smoothed === null || o.tauSeconds <= 0) this.smoothed = value;
    else this.smoothed += (1 - Math.exp(-(tMs - this.lastT) / 1000 / o.tauSeconds)) * (value - this.smoothed);
    this.lastT = tMs;
    const v = this.smoothed, h = this.history;
    h.push([tMs, v]);
    while (h.length && tMs - h[0][0] > o.spanSeconds * 1000) h.shift();
    const depth = o.minAmplitude ?? this.signal.minAmplitude;
    if (this.phase !== "down") {
      this.phase = "up";
      if (this.top === null || v > this.top) this.top = v;
      if (this.top - v >= depth) {
        this.phase = "down";
        this.bottom = v;
      }
      return false;
    }
    if (v < this.bottom) this.bottom = v;
    const fall = this.top - this.bottom;
    if (v - this.bottom >= Math.max(depth, o.recover * fall)) {
      this.phase = "up";
      this.top = v;
      if (tMs - this.lastRepT >= o.minRepSeconds * 1000) {
        this.lastRepT = tMs;
        return true;
      }
    }
    return false;
  }
}

/** Rep counter for one exercise: its signal, or the strongest of its signals. Options: those given, else the
 * exercise's options (optionsFor), else DEFAULTS. */
export class RepCounter {
  constructor(exercise, options = {}) {
    this.exercise = exercise;
    const names = signalsFor(exercise);
    const opt = { ...optionsFor(exercise), ...options };
    this.counters = names.map((name) => Object.assign(new SignalCounter(SIGNALS[name], opt), { name }));
  }

  /** The counter currently driving the count (for display: its signal and thresholds). */
  get active() {
    if (this.counters.length === 1) return this.counters[0];
    return this.counters.reduce((a, b) => (b.strength > a.strength ? b : a));
  }

  update(frame, tMs) {
    const lead = this.active; // chosen before this sample, so a spike cannot both switch and count
    let rep = false;
    for (const c of this.counters) if (c.update(frame, tMs) && c === lead && c.strength >= 1) rep = true;
    return rep;
  }
}
