// Rep counting (web/static/js/reps.js) on signals and skeleton frames whose right answers are known.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULTS, RepCounter, SIGNALS, SignalCounter, optionsFor, signalsFor } from "../../src/musclevision/web/static/js/reps.js";
import { cycles, frame } from "./helpers.mjs";

function sampled(fn, seconds, { fps = 15, noise = 0, seed = 1 } = {}) {
  let s = seed;
  const random = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1; // deterministic
  const out = [];
  for (let t = 0; t < seconds; t += 1 / fps) out.push([t * 1000, fn(t) + noise * random()]);
  return out;
}

function count(samples, minAmplitude = 0.25) {
  const c = new SignalCounter({ minAmplitude });
  return samples.filter(([t, v]) => c.updateValue(v, t)).length;
}

for (const [reps, period] of [[10, 1.5], [6, 2.5], [12, 0.9]]) {
  test(`counts every clean cycle (${reps} x ${period} s, with jitter)`, () => {
    const samples = sampled((t) => 1.2 + 0.4 * Math.cos((2 * Math.PI * t) / period), reps * period + 0.3, { noise: 0.02 });
    assert.equal(count(samples), reps);
  });
}

test("standing still, jitter and slow drift never count", () => {
  assert.equal(count(sampled(() => 1.4, 30, { noise: 0.04 })), 0);
  assert.equal(count(sampled((t) => 1.4 + 0.01 * t, 30, { noise: 0.04, seed: 2 })), 0);
});

test("motion below the signal's minimum amplitude does not count", () => {
  assert.equal(count(sampled((t) => 1.2 + 0.1 * Math.cos((2 * Math.PI * t) / 1.5), 15, { noise: 0.01 })), 0);
});

test("hovering mid-range after a rep is not a second rep (hysteresis)", () => {
  const rep = sampled((t) => 1.2 + 0.4 * Math.cos((2 * Math.PI * t) / 1.5), 1.5);
  const hover = sampled((t) => 1.2 + 0.08 * Math.sin(t * 25), 3).map(([t, v]) => [t + 1500, v]);
  assert.equal(count([...rep, ...hover]), 1);
});

test("a rep counts once the signal is back up half its fall (and at least the minimum amplitude), not before", () => {
  // Rest at 1.0, down to 0.0 (a fall of 1.0, minimum amplitude 0.25), then up to `peak` and held there.
  const rep = (peak) => {
    const c = new SignalCounter({ minAmplitude: 0.25 }, { tauSeconds: 0 });
    const values = [1.0, 0.75, 0.5, 0.25, 0.0, 0.0, peak / 2, peak, peak, peak];
    return values.filter((v, i) => c.updateValue(v, i * 100)).length;
  };
  assert.equal(rep(0.45), 0); // 45 % of the fall
  assert.equal(rep(0.55), 1); // 55 %
  const shallow = new SignalCounter({ minAmplitude: 0.25 }, { tauSeconds: 0 }); // fall 0.3: recovery must be >= 0.25
  assert.equal([1.0, 0.85, 0.7, 0.7, 0.9, 0.94, 0.94].filter((v, i) => shallow.updateValue(v, i * 100)).length, 0);
  assert.equal(shallow.updateValue(0.96, 700), true);
});

test("two reps less than 0.7 s apart are one (a jittery fit dipping again on the way up); 0.7 s apart, two", () => {
  const reps = (gapMs) => {
    const c = new SignalCounter({ minAmplitude: 0.25 }, { tauSeconds: 0 });
    const first = [1.0, 0.5, 0.0, 0.6]; // counted on the 4th sample (t = 300 ms)
    const second = [0.3, 0.0, 0.6]; // a second full dip, its rise `gapMs` after the first count
    const times = [0, 100, 200, 300, 300 + gapMs - 200, 300 + gapMs - 100, 300 + gapMs];
    return [...first, ...second].filter((v, i) => c.updateValue(v, times[i])).length;
  };
  assert.equal(reps(650), 1);
  assert.equal(reps(700), 2);
});

test("push-ups may be faster than the merge: five 0.45 s push-ups count five, five squats at that pace do not", () => {
  // Arms bent and straightened every 0.45 s, after a second at rest: within push-ups' shorter merge, not the default.
  const pace = 0.45, reps = (exercise, joint) => {
    const c = new RepCounter(exercise, { tauSeconds: 0 });
    return cycles({ joint, reps: 5, period: pace, fps: 30, lead: 1 }).filter(([t, f]) => c.update(f, t)).length;
  };
  assert.ok(pace < DEFAULTS.minRepSeconds);
  assert.equal(reps("PushUps", "elbow"), 5);
  assert.ok(reps("BenchPress", "elbow") < 5);
  assert.ok(reps("BodyWeightSquats", "knee") < 5);
  // options given to the counter still win over the exercise's own
  const merged = new RepCounter("PushUps", { tauSeconds: 0, minRepSeconds: DEFAULTS.minRepSeconds });
  const counted = cycles({ joint: "elbow", reps: 5, period: pace, fps: 30, lead: 1 }).filter(([t, f]) => merged.update(f, t));
  assert.ok(counted.length < 5);
});

test("a long gap (nobody in view) starts afresh: half a rep before and half after are not a rep", () => {
  const first = sampled((t) => 1.2 + 0.4 * Math.cos((2 * Math.PI * t) / 2), 1.0);
  const second = sampled((t) => 1.2 - 0.4 * Math.cos((2 * Math.PI * t) / 2), 1.0).map(([t, v]) => [t + 6000, v]);
  assert.equal(count([...first, ...second]), 0);
});

test("a clip that starts at the bottom does not count that half rep; the first full rep counts", () => {
  // starts low (bottom of a squat), rises, then 3 full cycles from the top
  const samples = sampled((t) => 1.2 - 0.4 * Math.cos((2 * Math.PI * t) / 2), 1.0 + 3 * 2);
  assert.equal(count(samples), 3);
});

const ARMS = ["elbowAngle", "armExtension"];
const ALL = Object.keys(SIGNALS);
const skeletonCases = [
  ["BodyWeightSquats", "knee", ["kneeAngle"]],
  ["Lunges", "knee", ["kneeAngle"]],
  ["PushUps", "elbow", ARMS],
  ["WallPushups", "elbow", ARMS],
  ["BenchPress", "elbow", ARMS],
  ["Goblet squat", "knee", ["kneeAngle"]], // unknown class names: by keyword
  ["Push-up", "elbow", ARMS],
  ["Mystery move", "knee", ALL], // anything else: the signal that moves most
  ["Mystery move", "elbow", ALL],
];
for (const [exercise, joint, signals] of skeletonCases) {
  test(`${exercise}: ${signals.join(" or ")} counts 5 ${joint} cycles on 3D skeletons, the first one included`, () => {
    const c = new RepCounter(exercise);
    const reps = cycles({ joint, reps: 5, period: 1.6, fps: 15 }).filter(([t, f]) => c.update(f, t)).length;
    assert.deepEqual(c.counters.map((k) => k.name), signals);
    assert.equal(reps, 5);
  });
}

/** A frame whose world elbows stay straight while the image shows both elbows bent to `angle` (degrees): a push-up
 * filmed head-on, where MediaPipe's depth of the arm is poor. */
function headOnFrame(angle) {
  const f = frame({ elbow: 175 });
  const rad = (angle * Math.PI) / 180;
  for (const [s, e, w, x] of [[11, 13, 15, 0.6], [12, 14, 16, 0.4]]) {
    f.image.set([x, 0.3], s * 4);
    f.image.set([x, 0.42], e * 4); // upper arm straight down in the image
    f.image.set([x + 0.12 * Math.sin(rad), 0.42 - 0.12 * Math.cos(rad)], w * 4);
  }
  return f;
}

test("arm exercises: the arms' extension in the image counts reps the 3D elbow angle misses", () => {
  for (const exercise of ["PushUps", "WallPushups", "BenchPress"]) {
    const c = new RepCounter(exercise);
    let reps = 0;
    for (let t = 0; t < 0.5 + 5 * 1.6 + 0.5; t += 1 / 15) {
      const inside = t >= 0.5 && t < 8.5;
      const angle = 170 - (80 * (1 - Math.cos(inside ? ((t - 0.5) / 1.6) * 2 * Math.PI : 0))) / 2;
      if (c.update(headOnFrame(angle), t * 1000)) reps += 1;
    }
    assert.equal(reps, 5, exercise);
    assert.equal(c.active.name, "armExtension");
  }
  const flat = new RepCounter("Mystery move").counters.find((k) => k.name === "elbowAngle");
  assert.ok(Math.abs(flat.signal.fn(headOnFrame(90)) - 175) < 1e-3); // the world angle did not move
});

test("arm extension is measured in pixels: x scaled by the frame's aspect", () => {
  const f = frame();
  for (const [s, e, w] of [[11, 13, 15], [12, 14, 16]]) {
    f.image.set([0.2, 0.5], s * 4);
    f.image.set([0.3, 0.5], e * 4); // 0.1 of the width across = 0.2 of the height on a 2:1 frame
    f.image.set([0.3, 0.7], w * 4); // 0.2 of the height down: a right angle in pixels
  }
  assert.ok(Math.abs(SIGNALS.armExtension.fn({ ...f, aspect: 2 }) - Math.SQRT1_2) < 1e-6);
  assert.ok(Math.abs(SIGNALS.armExtension.fn(f) - Math.SQRT1_2) > 0.03); // without the aspect: not a right angle
});

test("angles are 3D: the same from any camera (a rotated skeleton gives the same knee angle)", () => {
  const f = frame({ knee: 100 });
  const turned = { image: f.image, world: new Float32Array(f.world) };
  for (let i = 0; i < 33; i++) {
    const [x, z] = [f.world[i * 3], f.world[i * 3 + 2]];
    turned.world[i * 3] = Math.cos(1) * x - Math.sin(1) * z; // yaw by 1 rad
    turned.world[i * 3 + 2] = Math.sin(1) * x + Math.cos(1) * z;
  }
  assert.ok(Math.abs(SIGNALS.kneeAngle.fn(f) - 100) < 1e-3);
  assert.ok(Math.abs(SIGNALS.kneeAngle.fn(turned) - 100) < 1e-3);
});

test("both sides are averaged by visibility: a hidden side weighs little", () => {
  const f = frame({ knee: 90 });
  // the right knee is hidden and its (estimated) angle is off: the signal stays near the visible side's
  const right = [24, 26, 28];
  for (const i of right) f.image[i * 4 + 3] = 0.01;
  f.world.set([-0.1 + 0.45, 0.45, 0], 28 * 3); // right ankle straight out: 90 deg too, then move it
  f.world.set([-0.1, 0.9, 0], 28 * 3); // right leg straight (180 deg)
  const value = SIGNALS.kneeAngle.fn(f);
  assert.ok(value > 90 && value < 100, `knee signal ${value}`);
});

test("no person: NaN, skipped", () => {
  const c = new RepCounter("BodyWeightSquats");
  assert.equal(c.update(null, 0), false);
  assert.ok(Number.isNaN(SIGNALS.kneeAngle.fn({ image: new Float32Array(132), world: new Float32Array(99).fill(NaN) })));
});

test("optionsFor gives a push-up class by any name the push-ups' faster merge, and wall push-ups the defaults", () => {
  for (const name of ["PushUps", "PushUp", "push-ups", "Push up"]) assert.deepEqual(optionsFor(name), { minRepSeconds: 0.4 }, name);
  for (const name of ["WallPushups", "Wall push-up", "BenchPress", "Push press", "Squat"]) assert.deepEqual(optionsFor(name), {}, name);
  assert.equal(new RepCounter("PushUp").counters[0].opt.minRepSeconds, 0.4);
  assert.equal(new RepCounter("PushUp", { minRepSeconds: 0.9 }).counters[0].opt.minRepSeconds, 0.9); // given options win
});

test("signalsFor maps the known classes and keywords", () => {
  assert.deepEqual(signalsFor("BodyWeightSquats"), ["kneeAngle"]);
  assert.deepEqual(signalsFor("Romanian deadlift"), ["hipAngle"]);
  assert.deepEqual(signalsFor("Bicep curl"), ["elbowAngle", "armExtension"]);
  assert.deepEqual(signalsFor("Plank"), Object.keys(SIGNALS));
});
