// The page's engine (web/static/js/engine.js): the window policy, states, smoothing, bouts and reps, with an
// injected classifier whose answers are scripted.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Engine } from "../../src/musclevision/web/static/js/engine.js";
import { card, CLASSES, cycles, fakeClassifier, frame, onehot, run } from "./helpers.mjs";

const at = (fps, seconds, make) => Array.from({ length: Math.round(fps * seconds) }, (_, i) => [(i * 1000) / fps, make(i)]);

test("the engine takes its window policy from the card; the page's overrides win", () => {
  const e = new Engine(card({ threshold: 0.7, smoothing_s: 0.5, min_detected: 3 }));
  assert.deepEqual([e.policy.threshold, e.policy.smoothing_s, e.policy.min_detected, e.frames.size], [0.7, 0.5, 3, 8]);
  const o = new Engine(card(), { threshold: 0.4, smoothingS: 0 });
  assert.deepEqual([o.policy.threshold, o.policy.smoothing_s], [0.4, 0]);
});

test("no classification until the window holds min_detected slots with a person (what evaluation scores)", async () => {
  const clf = fakeClassifier(() => onehot("PushUps"));
  const e = new Engine(card({ min_detected: 4 }), { classify: clf.classify });
  // 25 fps, a person only in every third frame: a window of 8 slots over 0.28 s holds 2-3 of them
  const sparse = at(25, 2, (i) => (i % 3 === 0 ? frame() : null));
  const trace = await run(e, sparse, clf);
  assert.equal(clf.calls.length, 0);
  assert.ok(trace.every((s) => ["no_person", "buffering"].includes(s.state)), JSON.stringify(trace.map((s) => s.state)));
  const dense = at(25, 1, () => frame()).map(([t, f]) => [t + 2000, f]);
  await run(e, dense, clf);
  assert.ok(clf.calls.length > 0 && clf.calls.every((c) => c.present >= 4));
  assert.equal(e.state, "exercise");
  assert.equal(e.label, "PushUps");
});

test("states: no person, then buffering, the exercise, unknown below the threshold; a short dropout holds", async () => {
  let answer = onehot("Lunges");
  const clf = fakeClassifier(() => answer);
  const e = new Engine(card({ smoothing_s: 0 }), { classify: clf.classify });
  await run(e, at(25, 0.5, () => null), clf);
  assert.equal(e.state, "no_person");
  await e.step(600, frame());
  assert.equal(e.state, "buffering"); // a person, but no full window yet
  await run(e, at(25, 1, () => frame()).map(([t, f]) => [t + 640, f]), clf);
  assert.deepEqual([e.state, e.label], ["exercise", "Lunges"]);
  await e.step(1700, null); // one frame without a person: hold
  assert.deepEqual([e.state, e.label], ["exercise", "Lunges"]);
  await e.step(2200, null); // 0.5 s without: no person
  assert.equal(e.state, "no_person");
  answer = [0.5, 0.2, 0.1, 0.1, 0.1];
  await run(e, at(25, 1, () => frame()).map(([t, f]) => [t + 2300, f]), clf);
  assert.deepEqual([e.state, e.label, e.top], ["unknown", null, "BenchPress"]);
});

test("probabilities are smoothed over time with the card's time constant", async () => {
  let answer = onehot("Lunges", 1);
  const clf = fakeClassifier(() => answer);
  const e = new Engine(card({ smoothing_s: 0.3, min_detected: 1, window: 2 }), { classify: clf.classify });
  await e.step(0, frame());
  await e.step(40, frame()); // the first full window: its probabilities as they are
  assert.equal(e.probabilities.Lunges, 1);
  answer = onehot("PushUps", 1);
  await e.step(340, frame()); // one time constant later: 1 - 1/e of the way
  assert.ok(Math.abs(e.probabilities.PushUps - (1 - Math.exp(-1))) < 1e-6, e.probabilities.PushUps);
  assert.deepEqual([e.state, e.top], ["exercise", "PushUps"]); // 0.63 >= 0.6
  await e.step(400, frame());
  assert.ok(e.probabilities.PushUps > 1 - Math.exp(-1));
});

test("pose only: without a classifier the state is pose_only and the fixed exercise is counted", async () => {
  const e = new Engine(card(), { mode: "BodyWeightSquats" });
  const trace = await run(e, cycles({ joint: "knee", reps: 4, period: 1.8 }));
  assert.ok(trace.slice(5).every((s) => s.state === "pose_only"));
  assert.equal(e.reps.BodyWeightSquats, 4);
  assert.deepEqual(e.log.rows().map((r) => [r.exercise, r.reps]), [["BodyWeightSquats", 4]]);
});

test("auto mode: reps count for the recognised exercise, the first rep included (done before recognition)", async () => {
  // The classifier only becomes sure after 1.4 s: the first squat (ends at ~2.1 s) is counted all the same,
  // and one done in the 2.5 s before is credited too.
  const clf = fakeClassifier((t) => (t < 1400 ? [0.3, 0.3, 0.2, 0.1, 0.1] : onehot("BodyWeightSquats")));
  const e = new Engine(card(), { classify: clf.classify });
  await run(e, cycles({ joint: "knee", reps: 5, period: 1.6, lead: 0.2 }), clf);
  e.log.close();
  assert.deepEqual(e.log.rows().map((r) => [r.exercise, r.reps]), [["BodyWeightSquats", 5]]);
});

test("a rep booked when its exercise is recognised later is reported once, at its own time (replay's rep events)", async () => {
  const clf = fakeClassifier((t) => (t < 1400 ? [0.3, 0.3, 0.2, 0.1, 0.1] : onehot("BodyWeightSquats")));
  const e = new Engine(card(), { classify: clf.classify });
  const trace = await run(e, cycles({ joint: "knee", reps: 5, period: 1.6, lead: 0.2 }), clf);
  e.log.close();
  const events = trace.flatMap((s) => [...s.credited.map((r) => r.t), ...(s.rep ? [s.t] : [])]);
  assert.equal(events.length, e.log.rows()[0].reps); // every logged rep is an event, and no more
  const late = trace.filter((s) => s.credited.length);
  assert.ok(late.length >= 1 && late.every((s) => s.credited.every((r) => r.t < s.t && r.exercise === "BodyWeightSquats")));
});

test("a rep of the previous exercise after the label changed is not logged in either bout", async () => {
  // push-ups (elbows) for 4 s, then the label says Lunges while the elbows still finish a push-up
  const frames = [
    ...cycles({ joint: "elbow", reps: 2, period: 1.6, lead: 0.4, tail: 0 }),
    ...cycles({ joint: "elbow", reps: 1, period: 1.6, lead: 0, tail: 0 }).map(([t, f]) => [t + 3600, f]),
  ];
  const clf = fakeClassifier((t) => (t < 3700 ? onehot("PushUps") : onehot("Lunges")));
  const e = new Engine(card({ smoothing_s: 0 }), { classify: clf.classify });
  const trace = await run(e, frames, clf);
  assert.ok(trace.some((s) => s.label === "Lunges"));
  const rows = e.log.rows();
  assert.equal(e.reps.PushUps, 2, JSON.stringify(rows));
  assert.equal(e.reps.Lunges, 0);
  assert.ok(trace.filter((s) => s.t >= 3700).every((s) => s.rep === null));
});

test("the overlay's bout: the exercise shown and its own reps, not the session's", async () => {
  const clf = fakeClassifier((t) => (t < 8000 ? onehot("BodyWeightSquats") : onehot("PushUps")));
  const e = new Engine(card({ smoothing_s: 0 }), { classify: clf.classify });
  await run(e, cycles({ joint: "knee", reps: 3, period: 2, lead: 0.5, tail: 0.5 }), clf); // ends at 7 s
  assert.deepEqual([e.bout.exercise, e.bout.reps], ["BodyWeightSquats", 3]);
  await run(e, at(25, 3, () => null).map(([t, f]) => [t + 7100, f]), clf);
  await run(e, cycles({ joint: "elbow", reps: 1, period: 1.5, lead: 0.5 }).map(([t, f]) => [t + 10200, f]), clf);
  assert.deepEqual([e.bout.exercise, e.bout.reps], ["PushUps", 1]);
  assert.deepEqual(e.reps, { ...Object.fromEntries(CLASSES.map((c) => [c, 0])), BodyWeightSquats: 3, PushUps: 1 });
});

test("clearLog forgets bouts and reps; reset (a new source) keeps them", async () => {
  const e = new Engine(card(), { mode: "BodyWeightSquats" });
  await run(e, cycles({ joint: "knee", reps: 2 }));
  e.reset();
  assert.equal(e.reps.BodyWeightSquats, 2);
  e.clearLog();
  assert.equal(e.reps.BodyWeightSquats, 0);
  assert.deepEqual(e.log.rows(), []);
});

test("a bout logged after nobody was in view starts when the person came, not when the label first showed", async () => {
  const clf = fakeClassifier(() => onehot("PushUps"));
  const e = new Engine(card({ smoothing_s: 0 }), { classify: clf.classify });
  await run(e, at(25, 1, () => null), clf); // nobody for 1 s
  const person = at(25, 3, () => frame()).map(([t, f]) => [t + 1000, f]);
  const trace = await run(e, person, clf);
  const shown = trace.find((s) => s.state === "exercise").t;
  assert.ok(shown >= 1000 + 3 * 40, `shown at ${shown} ms: the window needs min_detected (4) frames with the person`);
  e.log.close();
  const [bout] = e.log.rows();
  assert.equal(bout.exercise, "PushUps");
  assert.equal(bout.start_s, 1.0); // the first frame with the person (the log's clock starts at 0)
});
