// Rep counting from one keypoint signal per exercise: smoothing, an adaptive range and hysteresis.
//
// A frame is a Float32Array(33 * 4) of PoseLandmarker image landmarks (x, y normalized to the
// image, z, visibility), or null when no person was found. x is rescaled by the image aspect
// ratio so angles and distances are measured in square units.
//
// The counter smooths the signal (time-aware exponential moving average), tracks its min/max
// over the last few seconds, and maps the current value to a position in [0, 1] of that range.
// A rep is one full cycle: the position must go below `low` and then back above `high`
// (hysteresis), the range must be at least the signal's `minAmplitude` (so a person standing
// still, or keypoint jitter, never counts) and reps closer than `minRepSeconds` are merged.
// Every signal is oriented so that the exercise's rest position is the *high* end (standing
// for squats, arms extended for push-ups / bench press): a rep counts on returning to it.

export const LM = Object.freeze({
  L_SHOULDER: 11, R_SHOULDER: 12, L_ELBOW: 13, R_ELBOW: 14, L_WRIST: 15, R_WRIST: 16,
  L_HIP: 23, R_HIP: 24, L_KNEE: 25, R_KNEE: 26, L_ANKLE: 27, R_ANKLE: 28,
});
const MIN_VISIBILITY = 0.5;

function vis(f, i) {
  const v = f[i * 4 + 3];
  return Number.isFinite(v) ? v : 0;
}
function pt(f, i, aspect) {
  return [f[i * 4] * aspect, f[i * 4 + 1]];
}
/** Midpoint of two landmarks, or the visible one of them, or null. */
function mid(f, a, b, aspect) {
  const va = vis(f, a) >= MIN_VISIBILITY, vb = vis(f, b) >= MIN_VISIBILITY;
  if (va && vb) {
    const [pa, pb] = [pt(f, a, aspect), pt(f, b, aspect)];
    return [(pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2];
  }
  if (va) return pt(f, a, aspect);
  if (vb) return pt(f, b, aspect);
  return null;
}
function dist(p, q) {
  return Math.hypot(p[0] - q[0], p[1] - q[1]);
}
function angle(a, b, c) {
  const u = [a[0] - b[0], a[1] - b[1]], v = [c[0] - b[0], c[1] - b[1]];
  const d = Math.hypot(...u) * Math.hypot(...v);
  if (d < 1e-12) return NaN;
  return (Math.acos(Math.max(-1, Math.min(1, (u[0] * v[0] + u[1] * v[1]) / d))) * 180) / Math.PI;
}
function torso(f, aspect) {
  const sh = mid(f, LM.L_SHOULDER, LM.R_SHOULDER, aspect), hip = mid(f, LM.L_HIP, LM.R_HIP, aspect);
  if (!sh || !hip) return null;
  const len = dist(sh, hip);
  return len > 1e-3 ? { sh, hip, len } : null;
}
/** Joint angle on the better-visible side (min visibility of its three landmarks). */
function sideAngle(f, aspect, left, right) {
  let best = null;
  for (const [a, b, c] of [left, right]) {
    const v = Math.min(vis(f, a), vis(f, b), vis(f, c));
    if (!best || v > best.v) best = { v, value: angle(pt(f, a, aspect), pt(f, b, aspect), pt(f, c, aspect)) };
  }
  return best.v >= MIN_VISIBILITY ? best.value : NaN;
}

export const SIGNALS = Object.freeze({
  hipHeight: {
    label: "hip height",
    minAmplitude: 0.25,
    landmarks: [LM.L_HIP, LM.R_HIP, LM.L_ANKLE, LM.R_ANKLE],
    // Height of the hips above the ankles, in torso lengths (image y grows downwards).
    fn(f, aspect) {
      const t = torso(f, aspect), an = mid(f, LM.L_ANKLE, LM.R_ANKLE, aspect);
      return t && an ? (an[1] - t.hip[1]) / t.len : NaN;
    },
  },
  elbowAngle: {
    label: "elbow angle",
    minAmplitude: 35,
    landmarks: [LM.L_SHOULDER, LM.R_SHOULDER, LM.L_ELBOW, LM.R_ELBOW, LM.L_WRIST, LM.R_WRIST],
    fn(f, aspect) {
      return sideAngle(f, aspect, [LM.L_SHOULDER, LM.L_ELBOW, LM.L_WRIST], [LM.R_SHOULDER, LM.R_ELBOW, LM.R_WRIST]);
    },
  },
  kneeAngle: {
    label: "knee angle",
    minAmplitude: 35,
    landmarks: [LM.L_HIP, LM.R_HIP, LM.L_KNEE, LM.R_KNEE, LM.L_ANKLE, LM.R_ANKLE],
    fn(f, aspect) {
      return sideAngle(f, aspect, [LM.L_HIP, LM.L_KNEE, LM.L_ANKLE], [LM.R_HIP, LM.R_KNEE, LM.R_ANKLE]);
    },
  },
  wristHeight: {
    label: "wrist height",
    minAmplitude: 0.3,
    landmarks: [LM.L_SHOULDER, LM.R_SHOULDER, LM.L_WRIST, LM.R_WRIST],
    // Height of the better-visible wrist above the shoulders, in torso lengths.
    fn(f, aspect) {
      const t = torso(f, aspect);
      if (!t) return NaN;
      const w = vis(f, LM.L_WRIST) >= vis(f, LM.R_WRIST) ? LM.L_WRIST : LM.R_WRIST;
      return vis(f, w) >= MIN_VISIBILITY ? (t.sh[1] - pt(f, w, aspect)[1]) / t.len : NaN;
    },
  },
});

// The signal each known exercise is counted on; other class names are matched by keyword,
// and anything else uses "auto" (whichever signal moves most, relative to its minimum amplitude).
export const EXERCISE_SIGNALS = Object.freeze({
  BodyWeightSquats: "hipHeight",
  Lunges: "hipHeight",
  PushUps: "elbowAngle",
  WallPushups: "elbowAngle",
  BenchPress: "elbowAngle",
});
const KEYWORD_SIGNALS = [
  [/squat|lunge|deadlift|sit.?to.?stand|step.?up/i, "hipHeight"],
  [/push|press|dip|curl|row|pull|extension|raise/i, "elbowAngle"],
];

export function signalFor(exercise) {
  if (EXERCISE_SIGNALS[exercise]) return EXERCISE_SIGNALS[exercise];
  for (const [re, name] of KEYWORD_SIGNALS) if (re.test(exercise)) return name;
  return "auto";
}

export const DEFAULTS = Object.freeze({
  tauSeconds: 0.12, // smoothing time constant
  spanSeconds: 6, // the range is min/max of the smoothed signal over this long
  low: 0.3, // hysteresis thresholds on the position within the range
  high: 0.7,
  minRepSeconds: 0.5, // two reps closer than this are one
  resetAfterSeconds: 2, // a gap this long (no person / exercise not recognised) starts afresh
});

/** Counts reps on one scalar signal. Feed values with `updateValue` or frames with `update`. */
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
    this.phase = null; // "low" | "high" | null
    this.lastRepT = -Infinity;
    this.min = null;
    this.max = null;
  }

  get amplitude() {
    return this.max === null ? 0 : this.max - this.min;
  }

  /** Relative motion: range / the signal's minimum amplitude (>= 1 means reps can count). */
  get strength() {
    return this.amplitude / this.signal.minAmplitude;
  }

  update(frame, tMs, aspect = 1) {
    return this.updateValue(frame ? this.signal.fn(frame, aspect) : NaN, tMs);
  }

  /** Add one sample; returns true when it completes a rep. NaN samples are skipped. */
  updateValue(value, tMs) {
    const o = this.opt;
    if (this.lastT !== null && tMs - this.lastT > o.resetAfterSeconds * 1000) this.reset();
    if (!Number.isFinite(value)) return false;
    if (this.smoothed === null || o.tauSeconds <= 0) this.smoothed = value;
    else this.smoothed += (1 - Math.exp(-(tMs - this.lastT) / 1000 / o.tauSeconds)) * (value - this.smoothed);
    this.lastT = tMs;
    const h = this.history;
    h.push([tMs, this.smoothed]);
    while (h.length && tMs - h[0][0] > o.spanSeconds * 1000) h.shift();
    let min = Infinity, max = -Infinity;
    for (const [, v] of h) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    this.min = min;
    this.max = max;
    if (max - min < this.signal.minAmplitude) return false;
    const p = (this.smoothed - min) / (max - min);
    if (this.phase !== "low" && p < o.low) {
      this.phase = "low";
    } else if (this.phase === "low" && p > o.high) {
      this.phase = "high";
      if (tMs - this.lastRepT >= o.minRepSeconds * 1000) {
        this.lastRepT = tMs;
        return true;
      }
    }
    return false;
  }
}

/** Rep counter for one exercise: its signal, or "auto" = the strongest of all signals. */
export class RepCounter {
  constructor(exercise, options = {}) {
    this.exercise = exercise;
    this.signalName = signalFor(exercise);
    const names = this.signalName === "auto" ? Object.keys(SIGNALS) : [this.signalName];
    this.counters = names.map((name) => Object.assign(new SignalCounter(SIGNALS[name], options), { name }));
  }

  /** The counter currently driving the count (for display: its signal and thresholds). */
  get active() {
    if (this.counters.length === 1) return this.counters[0];
    return this.counters.reduce((a, b) => (b.strength > a.strength ? b : a));
  }

  update(frame, tMs, aspect = 1) {
    const lead = this.active; // chosen before this sample, so a spike cannot both switch and count
    let rep = false;
    for (const c of this.counters) if (c.update(frame, tMs, aspect) && c === lead && c.strength >= 1) rep = true;
    return rep;
  }
}
