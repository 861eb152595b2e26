// Session log: one row per exercise bout (exercise, start, end, duration, reps), exportable as CSV/JSON.
//
// `update(exercise, tMs)` is called every processed frame with the exercise being counted (or
// null). A new exercise must last `minBoutSeconds` before it becomes a bout (its start is back-
// dated to when it first appeared, and reps counted meanwhile are kept), so one-frame label
// flickers never create rows; a bout ends when its exercise has been absent for `graceSeconds`
// (its end is the last time it was seen), so a short dropout does not split a bout in two.
// Times are performance.now() milliseconds; rows carry wall-clock ISO 8601 times.

export const CSV_COLUMNS = ["exercise", "start", "end", "duration_s", "reps"];
export const SESSION_FORMAT = "musclevision-session/1";

function iso(tMs) {
  return new Date(performance.timeOrigin + tMs).toISOString();
}

export class SessionLog {
  constructor({ minBoutSeconds = 1.0, graceSeconds = 2.0 } = {}) {
    this.minBoutMs = minBoutSeconds * 1000;
    this.graceMs = graceSeconds * 1000;
    this.clear();
  }

  clear() {
    this.bouts = []; // closed
    this.current = null; // {exercise, startMs, endMs, reps}
    this.candidate = null;
    this.startedMs = performance.now();
  }

  update(exercise, tMs) {
    const cur = this.current;
    if (exercise && cur && exercise === cur.exercise) {
      cur.endMs = tMs;
      this.candidate = null;
    } else if (exercise) {
      const cand = this.candidate;
      if (cand && cand.exercise === exercise) {
        cand.endMs = tMs;
        if (cand.endMs - cand.startMs >= this.minBoutMs) {
          this._close();
          this.current = cand;
          this.candidate = null;
        }
      } else {
        this.candidate = { exercise, startMs: tMs, endMs: tMs, reps: 0 };
      }
    } else {
      this.candidate = null;
    }
    if (this.current && tMs - this.current.endMs > this.graceMs) this._close();
  }

  addRep(exercise) {
    if (this.current && this.current.exercise === exercise) this.current.reps += 1;
    else if (this.candidate && this.candidate.exercise === exercise) this.candidate.reps += 1;
  }

  _close() {
    const cur = this.current;
    if (cur && (cur.endMs - cur.startMs >= this.minBoutMs || cur.reps > 0)) this.bouts.push(cur);
    this.current = null;
  }

  /** All bouts, the ongoing one last (marked ongoing), as plain objects. */
  rows() {
    const all = this.current ? [...this.bouts, { ...this.current, ongoing: true }] : this.bouts;
    return all.map((b) => ({
      exercise: b.exercise,
      start: iso(b.startMs),
      end: iso(b.endMs),
      duration_s: Math.round(b.endMs - b.startMs) / 1000,
      reps: b.reps,
      ongoing: Boolean(b.ongoing),
    }));
  }

  toCSV() {
    const lines = [CSV_COLUMNS.join(",")];
    for (const row of this.rows()) lines.push(CSV_COLUMNS.map((c) => csvField(row[c])).join(","));
    return lines.join("\r\n") + "\r\n";
  }

  toJSON(meta = {}) {
    const totals = {};
    for (const row of this.rows()) totals[row.exercise] = (totals[row.exercise] || 0) + row.reps;
    return {
      format: SESSION_FORMAT,
      exported: new Date().toISOString(),
      started: iso(this.startedMs),
      ...meta,
      columns: CSV_COLUMNS,
      bouts: this.rows(),
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
