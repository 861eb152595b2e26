// The session log (web/static/js/session.js): bouts from the exercise shown over time, reps, CSV/JSON exports.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CSV_COLUMNS, csvField, SESSION_FORMAT, SessionLog } from "../../src/musclevision/web/static/js/session.js";

/** [(exercise or null, seconds, reps)] -> the log after feeding it at `fps`, reps spread inside each segment. */
function feed(segments, { fps = 10, start = 0, log = new SessionLog({ minBoutSeconds: 1, graceSeconds: 2 }) } = {}) {
  let t = start;
  for (const [exercise, seconds, reps] of segments) {
    const n = Math.round(seconds * fps);
    const repAt = new Set(Array.from({ length: reps }, (_, k) => Math.floor(((k + 0.5) * n) / reps)));
    for (let i = 0; i < n; i++) {
      log.update(exercise, t);
      if (repAt.has(i)) log.addRep(exercise, t);
      t += 1000 / fps;
    }
  }
  return log;
}

const brief = (log) => log.rows().map((r) => [r.exercise, Math.round(r.duration_s * 10) / 10, r.reps, r.ongoing]);

test("bouts: flickers are not bouts, short dropouts do not split one, a long absence ends it", () => {
  const log = feed([
    ["PushUps", 0.4, 0], // flicker: shorter than a bout
    [null, 1.0, 0],
    ["BodyWeightSquats", 5.0, 3],
    ["Lunges", 0.3, 0], // flicker inside a bout
    [null, 1.0, 0], // short dropout: same bout
    ["BodyWeightSquats", 2.0, 1],
    ["PushUps", 3.0, 4],
    [null, 3.0, 0], // longer than the grace period: the bout ends
  ]);
  assert.deepEqual(brief(log), [["BodyWeightSquats", 8.2, 4, false], ["PushUps", 2.9, 4, false]]);
});

test("the ongoing bout is not marked ongoing once another exercise is shown", () => {
  const log = feed([["BodyWeightSquats", 3, 2], ["Lunges", 0.5, 0]]);
  assert.deepEqual(brief(log), [["BodyWeightSquats", 2.9, 2, false]]); // Lunges not yet a bout; squats no longer ongoing
  feed([["Lunges", 1.0, 0]], { log, start: 3500 });
  assert.deepEqual(brief(log).map((r) => [r[0], r[3]]), [["BodyWeightSquats", false], ["Lunges", true]]);
  assert.equal(log.rows()[1].start_s, 3); // back-dated to when Lunges first showed
});

test("a rep of another exercise than the one shown is never logged", () => {
  const log = feed([["BodyWeightSquats", 3, 2]]);
  log.update("Lunges", 3100);
  assert.equal(log.addRep("BodyWeightSquats", 3100), false);
  assert.equal(log.totals().BodyWeightSquats, 2);
});

test("reps just before an exercise is recognised count in its bout, never those before the previous bout ended", () => {
  const log = new SessionLog({ lookbackSeconds: 2.5 });
  log.update(null, 0);
  log.addRep("PushUps", 500); // too early (more than 2.5 s before recognition)
  log.addRep("PushUps", 1500);
  log.addRep("PushUps", 2500);
  log.update("PushUps", 3100);
  assert.deepEqual(log.credited.map((r) => r.t), [1500, 2500]); // booked now, at their own times
  for (let t = 3200; t < 5000; t += 100) log.update("PushUps", t);
  assert.deepEqual(log.credited, []);
  assert.equal(log.totals().PushUps, 2);
  // the same after a bout of another exercise: reps before its end stay out
  const other = feed([["PushUps", 2, 1]]);
  other.addRep("Lunges", 1900); // while PushUps is shown: not a lunge
  for (let t = 2000; t < 2400; t += 100) other.update(null, t);
  other.addRep("Lunges", 2200);
  for (let t = 2400; t < 4000; t += 100) other.update("Lunges", t);
  assert.equal(other.totals().Lunges, 1);
});

test("close() ends the session: the last bout is closed, an exercise shown with a rep is kept", () => {
  const log = feed([["WallPushups", 3, 2]]);
  assert.equal(log.rows().at(-1).ongoing, true);
  log.close();
  assert.deepEqual(brief(log), [["WallPushups", 2.9, 2, false]]);
});

test("a set shorter than a bout that counted a rep is kept when the person leaves; a replaced flicker is not", () => {
  const opts = { minBoutSeconds: 1.5, graceSeconds: 2 };
  const short = feed([[null, 1, 0], ["PushUps", 1.0, 2], [null, 3, 0]], { log: new SessionLog(opts) });
  assert.deepEqual(brief(short), [["PushUps", 0.9, 2, false]]);
  assert.equal(short.totals().PushUps, 2); // the reps once on the card stay there
  const none = feed([[null, 1, 0], ["PushUps", 1.0, 0], [null, 3, 0]], { log: new SessionLog(opts) });
  assert.deepEqual(brief(none), []); // no rep: too short to be a bout
  const flicker = feed([["BodyWeightSquats", 3, 2], ["Lunges", 1.0, 1], ["PushUps", 3, 2]], { log: new SessionLog(opts) });
  assert.deepEqual(brief(flicker).map((r) => r[0]), ["BodyWeightSquats", "PushUps"]);
  assert.equal(flicker.totals().Lunges, undefined);
});

test("exports: CSV columns (the ongoing bout marked), quoting, no spreadsheet formulas; JSON", () => {
  const log = feed([["BodyWeightSquats", 3.0, 2], ['Push, "wide"', 2.0, 1], ["=cmd", 2.0, 0]]);
  const lines = log.toCSV().trim().split("\r\n");
  assert.equal(lines[0], CSV_COLUMNS.join(","));
  assert.deepEqual(CSV_COLUMNS, ["exercise", "start", "end", "start_s", "end_s", "duration_s", "reps", "ongoing"]);
  assert.match(lines[1], /^BodyWeightSquats,\d{4}-\d\d-\d\dT[\d:.]+Z,[^,]+,0,2\.9,2\.9,2,false$/);
  assert.ok(lines[2].startsWith('"Push, ""wide""",'));
  assert.ok(lines[3].startsWith("'=cmd,") && lines[3].endsWith(",true"));
  const json = log.toJSON({ model: { name: "m" } });
  assert.equal(json.format, SESSION_FORMAT);
  assert.deepEqual(json.model, { name: "m" });
  assert.deepEqual(json.columns, CSV_COLUMNS);
  assert.equal(json.bouts.at(-1).ongoing, true);
  assert.deepEqual(json.reps_total, { BodyWeightSquats: 2, 'Push, "wide"': 1, "=cmd": 0 });
  assert.equal(csvField("@x"), "'@x");
});

test("times: ISO from the origin, seconds from the session's first frame", () => {
  const log = new SessionLog({ originMs: Date.UTC(2026, 0, 1), minBoutSeconds: 1 });
  for (let t = 5000; t <= 7000; t += 100) log.update("Lunges", t);
  const [row] = log.rows();
  assert.equal(row.start, "2026-01-01T00:00:05.000Z");
  assert.deepEqual([row.start_s, row.end_s, row.duration_s], [0, 2, 2]);
});

test("times: without an origin (a video that does not say when it was recorded) no wall-clock time is made up", () => {
  const log = new SessionLog({ originMs: null, minBoutSeconds: 1 });
  for (let t = 5000; t <= 7000; t += 100) log.update("Lunges", t);
  const [row] = log.rows();
  assert.deepEqual([row.start, row.end, row.start_s, row.end_s], [null, null, 0, 2]);
  assert.ok(log.toCSV().split("\r\n")[1].startsWith("Lunges,,,0,2,2,0,"), log.toCSV());
  assert.equal(log.toJSON().started, null);
});

test("times: each bout keeps the clock it began with (a camera, then a video file, in one session)", () => {
  const log = new SessionLog({ originMs: Date.UTC(2026, 0, 1), minBoutSeconds: 1, graceSeconds: 1 });
  for (let t = 5000; t <= 7000; t += 100) log.update("Lunges", t); // the camera
  for (let t = 7100; t <= 9000; t += 100) log.update(null, t);
  log.setClock(null, 8500); // a file whose 0:00 is at t = 8.5 s
  for (let t = 9000; t <= 11000; t += 100) log.update("PushUps", t);
  const [camera, file] = log.rows();
  assert.equal(camera.start, "2026-01-01T00:00:05.000Z");
  assert.ok(!("video_start_s" in camera), camera);
  assert.deepEqual([file.start, file.end, file.start_s, file.video_start_s, file.video_end_s], [null, null, 4, 0.5, 2.5]);
  assert.equal(log.toJSON().started, "2026-01-01T00:00:05.000Z"); // when the session started, on its own clock
  assert.ok(log.toCSV().split("\r\n")[1].startsWith("Lunges,2026-01-01T00:00:05.000Z,"), log.toCSV());
  assert.ok(log.toCSV().split("\r\n")[2].startsWith("PushUps,,,4,6,2,0,"), log.toCSV());
});

test("version changes whenever a table of the log would change", () => {
  const log = new SessionLog();
  const v0 = log.version;
  log.update("Lunges", 0);
  const v1 = log.version;
  assert.ok(v1 > v0);
  log.update("Lunges", 100);
  assert.equal(log.version, v1); // nothing new to show but the running duration
  log.addRep("Lunges", 150);
  assert.ok(log.version > v1);
});

test("defaults: a misrecognition of up to 1.5 s inside a set neither logs a bout nor splits the set", () => {
  const log = feed([
    ["BodyWeightSquats", 4.0, 2],
    ["Lunges", 1.2, 0], // longer than the old 1 s minimum: it was a bout of its own, and split the squats in two
    ["BodyWeightSquats", 3.0, 1],
    ["PushUps", 2.0, 1], // a real change: shown for longer than the minimum
  ], { log: new SessionLog() });
  assert.deepEqual(brief(log), [["BodyWeightSquats", 8.1, 3, false], ["PushUps", 1.9, 1, true]]);
});

test("a bout starts where its evidence began; right after another bout the two meet halfway; shown time still decides", () => {
  const log = new SessionLog({ minBoutSeconds: 1.5, graceSeconds: 2 });
  for (let t = 0; t <= 3000; t += 100) log.update("BodyWeightSquats", t, t - 1280);
  // squats shown from 0 with evidence from -1.28 s (the window began before the log did)
  for (let t = 3100; t <= 6000; t += 100) log.update("Lunges", t, t - 1280); // evidence reaches into the squats
  const rows = log.rows();
  assert.deepEqual(rows.map((r) => r.exercise), ["BodyWeightSquats", "Lunges"]);
  assert.equal(rows[0].start_s, 0); // not before the log started (a Clear mid-set starts a new log)
  assert.equal(rows[0].start, new Date(0).toISOString());
  // Lunges first shown at 3.1 s with evidence from 1.82 s, inside the squats (shown until 3.0 s): the window turned
  // halfway through the change, so both bouts meet at (1.82 + 3.1) / 2 = 2.46 s
  assert.equal(rows[1].start_s, 2.46);
  assert.equal(rows[0].end_s, 2.46);
  assert.equal(rows[0].duration_s, 2.46);
  // a flicker shown 1 s is not a bout, whatever its evidence reaches back to
  for (let t = 6100; t <= 7100; t += 100) log.update("PushUps", t, t - 1280);
  for (let t = 7200; t <= 9000; t += 100) log.update("Lunges", t, t - 1280);
  assert.deepEqual(log.rows().map((r) => r.exercise), ["BodyWeightSquats", "Lunges"]);
  // after nobody was in view, the start goes back to where the evidence began
  for (let t = 9100; t <= 12000; t += 100) log.update(null, t, t);
  for (let t = 12100; t <= 14000; t += 100) log.update("PushUps", t, 11800);
  assert.equal(log.rows()[2].start_s, 11.8);
});

test("right after another bout: a short set kept when the person leaves does not overlap it; its first rep counts", () => {
  const log = new SessionLog({ minBoutSeconds: 1.5, graceSeconds: 2, lookbackSeconds: 2.5 });
  for (let t = 0; t <= 3000; t += 100) log.update("BodyWeightSquats", t, t - 1280);
  log.addRep("Lunges", 2800); // while the squats were shown: not a lunge
  log.addRep("Lunges", 3050); // after the squats were last shown, before Lunges was: the first lunge
  for (let t = 3100; t <= 3800; t += 100) log.update("Lunges", t, t - 1280); // shown 0.7 s: too short for a bout...
  assert.equal(log.totals().Lunges, 1); // ...but it counted its first rep
  for (let t = 3900; t <= 7000; t += 100) log.update(null, t, t); // the person left
  const rows = log.rows();
  assert.deepEqual(rows.map((r) => [r.exercise, r.start_s, r.end_s, r.reps]), [["BodyWeightSquats", 0, 2.46, 0], ["Lunges", 2.46, 3.8, 1]]);
});

test("a bout needs minBoutSeconds of being shown, however far back its evidence reaches", () => {
  const log = new SessionLog({ minBoutSeconds: 1.5, graceSeconds: 2 });
  log.update(null, 0);
  for (let t = 3000; t <= 4200; t += 100) log.update("PushUps", t, t - 1280); // shown 1.2 s, evidence from 1.72 s
  assert.deepEqual(log.rows(), []);
  log.close(); // the file ended: a candidate shown too briefly is still no bout
  assert.deepEqual(log.rows(), []);
  const longer = new SessionLog({ minBoutSeconds: 1.5, graceSeconds: 2 });
  longer.update(null, 0);
  for (let t = 3000; t <= 4500; t += 100) longer.update("PushUps", t, t - 1280);
  assert.deepEqual(longer.rows().map((r) => [r.exercise, r.start_s]), [["PushUps", 1.72]]);
});
