// Session log: one row per exercise bout (exercise, start, end, duration, reps), exportable as CSV/JSON.
//
// `update(exercise, tMs, evidenceMs)` is called every processed frame with the exercise being shown (or null)
// and, optionally, when the frames that recognised it begin (the engine: the classifier window's start, not
// before the person came into view). A new exercise must be shown for `minBoutSeconds` before it becomes a
// bout; its start is then back-dated to where the evidence for it began when it was first shown (never before
// the log started, nor before the previous bout ended): the person started exercising before the classifier could
// say so. When that evidence reaches into the ongoing bout of another exercise (one right after the other, the person
// in view), the two meet halfway between it and when the new one was first shown. Without `evidenceMs` the start
// is when the exercise was first shown. A bout ends when its exercise has not been shown for `graceSeconds` (its end
// is the last time it was shown), so a short dropout does not split it; as soon as another exercise is shown the
// bout is no longer "ongoing" (it resumes if that other exercise was a flicker). An exercise shown for less than
// `minBoutSeconds` is still a bout when it counted a rep and then nothing was shown (a short set, the person left)
// or the session ended; one that another exercise replaced is a flicker, its reps dropped.
//
// `addRep(exercise, tMs)` offers a completed rep: it counts in the bout of that exercise when that
// exercise is shown at tMs (or nothing is shown during a dropout of that bout), never in a bout of another
// exercise. Reps completed in the `lookbackSeconds` before an exercise is first shown count in its bout:
// the classifier needs a moment to recognise an exercise, the first rep is often done by then.
// Times are the caller's milliseconds; rows carry ISO 8601 times (`originMs` = epoch ms of t = 0; null when the
// wall-clock time is not known, e.g. a replayed video that does not say when it was recorded: start/end are then
// empty) and seconds since the session started. One session can span sources (a camera, then a file): `setClock`
// changes the clock for the bouts that begin from then on, and each bout keeps the clock it began with. A clock with
// `videoZeroMs` (the caller's time of a video's 0:00) also gives its bouts' places in that video (video_start_s,
// video_end_s; JSON only, the CSV's columns stay as they are).

export const CSV_COLUMNS = ["exercise", "start", "end", "start_s", "end_s", "duration_s", "reps", "ongoing"];
export const SESSION_FORMAT = "musclevision-session/2";
// minBoutSeconds 1.5, not 1.0: a 1-1.5 s flicker to another exercise inside a set is a misrecognition, not a set;
// while it is not logged, the set it interrupted goes on. Measured (benchmarks/report_page.py, 96 workouts of
// held-out groups): bouts F1 0.786 -> 0.848, precision 74.0 -> 84.1 %, recall 83.9 -> 85.4 %; 2.0 s lost recall.
export const SESSION_DEFAULTS = Object.freeze({ minBoutSeconds: 1.5, graceSeconds: 2.0, lookbackSeconds: 2.5 });

const round3 = (v) => Math.round(v) / 1000;

export class SessionLog {
  constructor({ originMs = 0, ...options } = {}) {
    this.opt = { ...SESSION_DEFAULTS, ...options };
    this.setClock(originMs);
    this.clear();
  }

  /** The clock of the bouts that begin from now on (see the header): `originMs` (epoch ms of t = 0, or null) and, for
   * a video, `videoZeroMs` (the time of its 0:00), else null. */
  setClock(originMs, videoZeroMs = null) {
    this.clock = Object.freeze({ originMs, videoZeroMs });
  }

  clear() {
    this.bouts = []; // closed, oldest first: {exercise, startMs, shownMs (first shown), endMs, reps}
    this.current = null; // the ongoing bout
    this.candidate = null; // an exercise shown for less than minBoutSeconds
    this.shown = null; // the exercise shown at the last update
    this.recent = []; // reps not (yet) in a bout, for the lookback: {exercise, t}
    this.credited = []; // reps of `recent` the last update booked into a new bout (their own times): {exercise, t}
    this.startedMs = null;
    this.lastMs = null;
    this.version = 0; // bumped on every change a table of the log would show
  }

  update(exercise, tMs, evidenceMs = tMs) {
    if (this.startedMs === null) [this.startedMs, this.startedClock] = [tMs, this.clock];
    this.lastMs = tMs;
    this.credited = [];
    const o = this.opt, cur = this.current;
    const changed = exercise !== this.shown;
    this.shown = exercise || null;
    if (exercise && cur && exercise === cur.exercise) {
      cur.endMs = tMs;
      this.candidate = null;
    } else if (exercise) {
      const cand = this.candidate;
      if (cand && cand.exercise === exercise) {
        cand.endMs = tMs;
        if (cand.endMs - cand.shownMs >= o.minBoutSeconds * 1000) this._promote(cand);
      } else {
        // Back-dated to where its evidence began, never before the previous bout ended. But evidence reaching into the
        // ongoing bout of another exercise means one exercise right after the other, the person in view: the
        // classifier's window straddled the change and turned when about half of it showed the new exercise, so the
        // two bouts meet in the middle of it (not before the other was first shown; its end is moved back there once
        // this one is a bout, see _promote).
        const evidence = Math.max(evidenceMs, this.startedMs);
        const straddled = cur && evidence < cur.endMs;
        const from = straddled ? Math.max((evidence + tMs) / 2, cur.shownMs) : Math.max(evidence, this._lastEndMs());
        const startMs = Math.min(tMs, from);
        this.candidate = { exercise, startMs, shownMs: tMs, endMs: tMs, reps: 0, clock: this.clock };
        // Reps of this exercise just before it was recognised, but never from before the previous bout was last shown
        // (from its halfway start instead: the other exercise's counter fires on its own moves too, more wrong reps).
        const floor = Math.max(tMs - o.lookbackSeconds * 1000, this._lastEndMs());
        for (const r of this.recent) {
          if (r.exercise !== exercise || r.t <= floor) continue;
          this.candidate.reps += 1;
          this.credited.push(r);
        }
      }
    }
    // Nothing (or nobody) shown: a bout, and an exercise still being recognised, survive a short dropout.
    if (this.candidate && tMs - this.candidate.endMs > o.graceSeconds * 1000) this._settleCandidate();
    if (this.current && tMs - this.current.endMs > o.graceSeconds * 1000) this._close();
    this.recent = this.recent.filter((r) => tMs - r.t <= o.lookbackSeconds * 1000);
    if (changed) this.version++;
  }

  /** A completed rep of `exercise` at tMs (see the header); returns true when it counts in a bout. */
  addRep(exercise, tMs) {
    const cur = this.current, cand = this.candidate;
    let bout = null;
    if (this.shown === exercise || this.shown === null) {
      // the exercise shown, or a dropout inside its bout (or while it is being recognised)
      bout = cand && cand.exercise === exercise ? cand : cur && cur.exercise === exercise ? cur : null;
    }
    if (bout) {
      bout.reps += 1;
      this.version++;
      return true;
    }
    this.recent.push({ exercise, t: tMs }); // maybe the first rep of an exercise not recognised yet (see update)
    return false;
  }

  /** End the session (a replayed video ended): the ongoing bout, if any, is closed. */
  close() {
    this._settleCandidate();
    this._close();
    this.shown = null;
    this.version++;
  }

  /** The bout that the display belongs to (the ongoing one, or the exercise being recognised), or null. */
  get active() {
    if (this.candidate && this.candidate.exercise === this.shown) return this.candidate;
    if (this.current && (this.shown === null || this.shown === this.current.exercise)) return this.current;
    return null;
  }

  /** The exercise being recognised is gone (the session ended, or nothing was shown for the grace period): it is a
   * bout when it was shown long enough or counted a rep, so reps once on the card stay there. */
  _settleCandidate() {
    const cand = this.candidate;
    if (cand && (cand.endMs - cand.shownMs >= this.opt.minBoutSeconds * 1000 || cand.reps > 0)) this._promote(cand);
    this.candidate = null;
  }

  /** `cand` becomes the ongoing bout, the one before is closed; where they overlap (one exercise right after another,
   * see update) the one before now ends where `cand` starts. Reps stay in the bout that counted them. */
  _promote(cand) {
    this._close();
    const prev = this.bouts[this.bouts.length - 1];
    if (prev && prev.endMs > cand.startMs) prev.endMs = cand.startMs;
    this.current = cand;
    this.candidate = null;
    this.version++;
  }

  _lastEndMs() {
    const last = this.current || this.bouts[this.bouts.length - 1];
    return last ? last.endMs : -Infinity;
  }

  _close() {
    const cur = this.current;
    if (cur && (cur.endMs - cur.startMs >= this.opt.minBoutSeconds * 1000 || cur.reps > 0)) this.bouts.push(cur);
    if (cur) this.version++;
    this.current = null;
  }

  /** ISO 8601 time of `tMs` on `clock` (default: the current one), or null when its origin is not known. */
  wallClock(tMs, clock = this.clock) {
    return clock.originMs === null ? null : new Date(clock.originMs + tMs).toISOString();
  }

  /** Reps per exercise over the whole session (closed bouts, the ongoing one and one being recognised). */
  totals() {
    const out = {};
    for (const b of [...this.bouts, this.current, this.candidate]) if (b) out[b.exercise] = (out[b.exercise] || 0) + b.reps;
    return out;
  }

  /** All bouts, oldest first; the ongoing one (still shown, or within its grace period) is marked ongoing. */
  rows() {
    const cur = this.current;
    const all = cur ? [...this.bouts, { ...cur, ongoing: this.shown === null || this.shown === cur.exercise }] : this.bouts;
    const started = this.startedMs ?? 0;
    return all.map((b) => {
      const zero = b.clock.videoZeroMs;
      return {
        exercise: b.exercise,
        start: this.wallClock(b.startMs, b.clock),
        end: this.wallClock(b.endMs, b.clock),
        start_s: round3(b.startMs - started),
        end_s: round3(b.endMs - started),
        duration_s: round3(b.endMs - b.startMs),
        reps: b.reps,
        ongoing: Boolean(b.ongoing),
        ...(zero === null ? {} : { video_start_s: round3(b.startMs - zero), video_end_s: round3(b.endMs - zero) }),
      };
    });
  }

  toCSV() {
    const lines = [CSV_COLUMNS.join(",")];
    for (const row of this.rows()) lines.push(CSV_COLUMNS.map((c) => csvField(row[c])).join(","));
    return lines.join("\r\n") + "\r\n";
  }

  toJSON(meta = {}) {
    const rows = this.rows(), totals = {};
    for (const row of rows) totals[row.exercise] = (totals[row.exercise] || 0) + row.reps;
    return {
      format: SESSION_FORMAT,
      started: this.startedMs === null ? null : this.wallClock(this.startedMs, this.startedClock),
      ...meta,
      columns: CSV_COLUMNS,
      bouts: rows,
      reps_total: totals,
    };
  }
}

/** RFC 4180 quoting, and no cell a spreadsheet would run as a formula. */
export function csvField(value) {
  let s = value === null || value === undefined ? "" : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}
