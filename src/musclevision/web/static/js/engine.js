// The page's decisions as one DOM-free engine: frames in, what the page shows out.
//
// Per processed frame (`step(t, det, aspect)`): the frame goes into the classifier's window
// (resampled to the model's rate, classifier.js FrameWindow); the injected classifier runs when the
// window holds enough slots with a person (the card's window_policy: what evaluation scores); its
// probabilities are smoothed over time; the state ("no_person", "buffering", "unknown",
// "exercise", ...) and the displayed exercise follow; reps are counted and the session log is kept.
// The page (app.js) feeds it camera frames and draws what it returns; musclevision-replay feeds it
// the frames of recorded videos in Node. Nothing here reads a clock: every time is the caller's `t`
// (milliseconds), so a replay gives the same answers whatever the machine.

import { FrameWindow, usesWorld } from "./classifier.js";
import { RepCounter } from "./reps.js";
import { SessionLog } from "./session.js";

export const STATES = Object.freeze(["loading", "error", "idle", "no_person", "buffering", "pose_only", "unknown", "exercise"]);
const ACTIVE = new Set(["exercise", "unknown", "pose_only", "buffering"]);

export const ENGINE_DEFAULTS = Object.freeze({
  noPersonSeconds: 0.4, // no person for this long: "no person" (shorter dropouts hold the last state)
});

export class Engine {
  /**
   * card: a validated model card. options:
   *   classify: async (frameWindow) => Float32Array of probabilities in card.classes order, or null (pose only)
   *   threshold, smoothingS: override the card's window_policy (URL parameters of the page)
   *   mode: "auto" (count the recognised exercise) or a class name (count it whenever a person is visible)
   *   log: SessionLog options
   */
  constructor(card, { classify = null, threshold = null, smoothingS = null, mode = "auto", log = {}, ...options } = {}) {
    const policy = card.window_policy;
    this.card = card;
    this.classes = [...card.classes];
    this.classify = classify;
    this.policy = Object.freeze({
      ...policy,
      threshold: threshold ?? policy.threshold,
      smoothing_s: Math.max(0, smoothingS ?? policy.smoothing_s),
    });
    this.opt = { ...ENGINE_DEFAULTS, ...options };
    this.frames = new FrameWindow(policy.window, usesWorld(card), policy.fps);
    this.log = new SessionLog(log);
    this.mode = mode;
    this.counters = {};
    this.classifierRuns = 0;
    this.clearLog();
    this.reset();
  }

  /** A new source (camera or file): forget the frames and the person, keep the log and the reps. */
  reset() {
    this.frames.clear();
    this.probabilities = null; // smoothed: what the decision and the bars use
    this.raw = null; // the last classifier output
    this.lastClassifierT = null;
    this.noPersonSince = null;
    this.personSince = null; // the first frame with a person since "no person" (or the source began)
    this.seenPerson = false;
    this.state = "no_person";
    this.label = null;
    this.counting = null;
    this.rep = null; // the exercise of a rep counted in the log by the last step, else null
    for (const counter of Object.values(this.counters)) counter.reset?.();
  }

  /** Clear the session log and every rep count. */
  clearLog() {
    this.log.clear();
    this.counters = Object.fromEntries(this.classes.map((c) => [c, new RepCounter(c)]));
  }

  setMode(mode) {
    this.mode = mode === "auto" || this.classes.includes(mode) ? mode : "auto";
  }

  /** Reps per exercise over the session (what the Reps card shows). */
  get reps() {
    const totals = this.log.totals();
    return Object.fromEntries(this.classes.map((c) => [c, totals[c] || 0]));
  }

  /** The bout the display belongs to ({exercise, reps, startMs}), or null: what the video overlay shows. */
  get bout() {
    return this.log.active;
  }

  /** One processed frame: det = {image: Float32Array(132), world: Float32Array(99)} or null (no person); aspect: the
   * frame's width / height (the rep counters measure distances in the image). */
  async step(t, det, aspect = 1) {
    if (det) {
      this.seenPerson = true;
      this.noPersonSince = null;
    } else if (this.noPersonSince === null) {
      this.noPersonSince = t;
    }
    this.frames.push(det ? det.image : null, det ? det.world : null, t);
    if (this.classify && this.frames.full && this.frames.presentCount() >= this.policy.min_detected) {
      const probs = await this.classify(this.frames);
      this.classifierRuns += 1;
      this.raw = Object.fromEntries(this.classes.map((c, i) => [c, probs[i]]));
      this._smooth(t);
    } else if (this.frames.full) {
      // Too few slots with a person for the model: its output would mean nothing, do not let it steer the smoothing.
      this.probabilities = null;
      this.lastClassifierT = null;
    }
    this._decide(t, det);
    if (this.state === "no_person") this.personSince = null;
    else if (det && this.personSince === null) this.personSince = t;
    this._countAndLog(t, det && { image: det.image, world: det.world, aspect });
    return this;
  }
  /** The class with the highest smoothed probability (null before the first classification). */
  get top() {
    if (!this.probabilities) return null;
    let best = null;
    for (const c of this.classes) if (best === null || this.probabilities[c] > this.probabilities[best]) best = c;
    return best;
  }

  _smooth(t) {
    const prev = this.probabilities, tau = this.policy.smoothing_s;
    if (!prev || tau <= 0 || this.lastClassifierT === null) {
      this.probabilities = { ...this.raw };
    } else {
      const a = 1 - Math.exp(-(t - this.lastClassifierT) / 1000 / tau);
      for (const c of this.classes) prev[c] += a * (this.raw[c] - prev[c]);
    }
    this.lastClassifierT = t;
  }

  _decide(t, det) {
    const gone = this.noPersonSince !== null && (!this.seenPerson || t - this.noPersonSince >= this.opt.noPersonSeconds * 1000);
    if (gone) return this._set("no_person", null);
    if (!det && ACTIVE.has(this.state)) return null; // brief dropout: hold
    if (!this.classify) return this._set("pose_only", null);
    if (!this.probabilities) return this._set("buffering", null);
    const top = this.top;
    return this.probabilities[top] >= this.policy.threshold ? this._set("exercise", top) : this._set("unknown", null);
  }

  _set(state, label) {
    this.state = state;
    this.label = label;
  }

  _countAndLog(t, det) {
    let counting = null;
    if (this.mode === "auto") counting = this.state === "exercise" ? this.label : null;
    else if (this.state !== "no_person" && det) counting = this.mode;
    this.counting = counting;
    this.rep = null;
    // Where the evidence for what is shown begins: the classifier window's first slot, not before the person came.
    const evidence = Math.max(t - this.frames.spanMs, this.personSince ?? t);
    this.log.update(counting, t, evidence);
    // Every exercise's counter follows the person all the time, so the first rep is there when the exercise is
    // recognised; the log decides which reps count (those of the exercise shown, see session.js).
    for (const c of this.classes) {
      if (this.counters[c].update(det, t) && this.log.addRep(c, t)) this.rep = c;
    }
  }
}
