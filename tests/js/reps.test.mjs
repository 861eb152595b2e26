// Rep counting (web/static/js/reps.js) on signals and skeleton frames whose right answers are known.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RepCounter, SIGNALS, SignalCounter, signalFor } from "../../src/musclevision/web/static/js/reps.js";
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

const skeletonCases = [
  ["BodyWeightSquats", "knee", "kneeAngle"],
  ["Lunges", "knee", "kneeAngle"],
  ["PushUps", "elbow", "elbowAngle"],
  ["WallPushups", "elbow", "elbowAngle"],
  ["BenchPress", "elbow", "elbowAngle"],
  ["Goblet squat", "knee", "kneeAngle"], // unknown class names: by keyword
  ["Push-up", "elbow", "elbowAngle"],
  ["Mystery move", "knee", "auto"], // anything else: the signal that moves most
  ["Mystery move", "elbow", "auto"],
];
for (const [exercise, joint, signal] of skeletonCases) {
  test(`${exercise}: ${signal} counts 5 ${joint} cycles on 3D skeletons, the first one included`, () => {
    const c = new RepCounter(exercise);
    const reps = cycles({ joint, reps: 5, period: 1.6, fps: 15 }).filter(([t, f]) => c.update(f, t)).length;
    assert.equal(c.signalName, signal);
    assert.equal(reps, 5);
  });
}

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

test("signalFor maps the known classes and keywords", () => {
  assert.equal(signalFor("BodyWeightSquats"), "kneeAngle");
  assert.equal(signalFor("Romanian deadlift"), "hipAngle");
  assert.equal(signalFor("Bicep curl"), "elbowAngle");
  assert.equal(signalFor("Plank"), "auto");
});
