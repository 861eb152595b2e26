// Keep the person who exercises when several are in view: the page's copy of the extractor's rule
// (src/musclevision/extract/exerciser.py, which documents it). Same steps, same arithmetic in the
// same order, parameters from the model card (pose_model.selector), so live keypoints come from
// the same person the training keypoints did; tests/test_exerciser.py checks both on the same input.
// No DOM: Node runs this module too.

import { EXERCISER } from "./generated/contract.js";

// The joints and rule versions are exerciser.py's, generated: the 12 body joints a person is followed by, UPPER
// (shoulders, elbows, wrists: positions in BODY_JOINTS) whose speed is scored, and the torso's ends.
// Cards exported before a rule keep theirs: v1 has no relink, v2 follows duplicate fits as people of their own.
export const { body_joints: BODY_JOINTS, rules: RULES } = EXERCISER;
const { upper: UPPER, shoulders: SHOULDERS, hips: HIPS } = EXERCISER;

/** Body joints of one person (flat landmarks, 4 numbers per landmark) in pixels, and the torso length (>= 1 px). */
export function bodyPose(lm, width, height) {
  const pose = BODY_JOINTS.map((j) => [lm[j * 4] * width, lm[j * 4 + 1] * height]);
  const sx = ((lm[SHOULDERS[0] * 4] + lm[SHOULDERS[1] * 4]) / 2) * width;
  const sy = ((lm[SHOULDERS[0] * 4 + 1] + lm[SHOULDERS[1] * 4 + 1]) / 2) * height;
  const hx = ((lm[HIPS[0] * 4] + lm[HIPS[1] * 4]) / 2) * width;
  const hy = ((lm[HIPS[0] * 4 + 1] + lm[HIPS[1] * 4 + 1]) / 2) * height;
  return [pose, Math.max(Math.sqrt((sx - hx) * (sx - hx) + (sy - hy) * (sy - hy)), 1.0)];
}

function poseDistance(a, b, size) {
  let total = 0.0;
  for (let j = 0; j < a.length; j++) {
    const dx = a[j][0] - b[j][0];
    const dy = a[j][1] - b[j][1];
    total += Math.sqrt(dx * dx + dy * dy);
  }
  return total / a.length / size;
}

/** How many of `people` (flat landmarks) are different people: a fit within `gate` torso lengths of one counted
 *  before is the same body found twice (exerciser.py's distinct_people). */
export function distinctPeople(people, width, height, gate) {
  const counted = [];
  for (const person of people) {
    const [pose, size] = bodyPose(person, width, height);
    if (counted.every(([other, otherSize]) => poseDistance(pose, other, Math.max(size, otherSize)) >= gate)) counted.push([pose, size]);
  }
  return counted.length;
}

/** Per person: a leftover (no track) within `gate` torso lengths of a person followed in this frame, or of an earlier
 *  leftover that is not itself a duplicate: the same body fitted twice (rule v3; exerciser.py's _duplicate_fits). */
function duplicateFits(poses, owner, gate) {
  const duplicate = poses.map(() => false);
  poses.forEach(([pose, size], i) => {
    if (owner[i] !== null) return;
    duplicate[i] = poses.some(
      ([other, otherSize], j) =>
        j !== i && (owner[j] !== null || (j < i && !duplicate[j])) && poseDistance(pose, other, Math.max(size, otherSize)) < gate,
    );
  });
  return duplicate;
}

/** Weight of a new sample after dtMs in an exponential average with time constant tauS (no exp(): exact on both sides). */
function alpha(dtMs, tauS) {
  const dt = dtMs / 1000.0;
  return dt > 0 ? dt / (tauS + dt) : 0.0;
}

class Track {
  constructor(id, pose, size, timestampMs) {
    this.id = id;
    this.pose = pose;
    this.size = size;
    this.lastSeenMs = timestampMs;
    this.smooth = UPPER.map((j) => [pose[j][0], pose[j][1]]);
    this.speed = 0.0;
    this.seen = false;
  }
}

function faster(a, sizeA, b, sizeB) {
  return a.speed > b.speed || (a.speed === b.speed && sizeA > sizeB);
}

export class ExerciserSelector {
  /** `params`: the card's pose_model.selector (rule, tau_s, fast_s, gate, relink, max_gap_s, switch_ratio). */
  constructor(width, height, params) {
    if (!params || !RULES.includes(params.rule))
      throw new Error(`pose_model.selector ${JSON.stringify(params)} is not a rule this page knows (${RULES.join(", ")}); update the page`);
    this.width = width;
    this.height = height;
    this.p = params;
    this.version = RULES.indexOf(params.rule) + 1; // v2: relink, v3: duplicate fits ignored
    this.tracks = [];
    this.kept = null;
    this.nextId = 0;
    this.peopleMax = 0;
    this.keptFrames = {};
    this.switches = 0;
  }

  /** `people`: flat landmark arrays (x, y, z, visibility per landmark). Returns the exerciser's index, or null. */
  update(people, timestampMs) {
    const p = this.p;
    this.peopleMax = Math.max(this.peopleMax, people.length);
    const poses = people.map((lm) => bodyPose(lm, this.width, this.height));

    // 1. follow: closest (pose, track) pairs first
    const pairs = [];
    poses.forEach(([pose, size], i) => {
      this.tracks.forEach((track, k) => {
        const d = poseDistance(pose, track.pose, Math.max(size, track.size));
        if (d < p.gate) pairs.push([d, i, k]);
      });
    });
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    const owner = poses.map(() => null);
    const taken = this.tracks.map(() => false);
    for (const [, i, k] of pairs) {
      if (owner[i] === null && !taken[k]) {
        owner[i] = this.tracks[k];
        taken[k] = true;
      }
    }
    // the kept track found no one: the nearest person left over within `relink` torso lengths continues it (v2)
    const relink = this.version >= 2 ? (p.relink ?? 0.0) : 0.0;
    if (this.kept !== null && !owner.includes(this.kept) && relink > 0) {
      let near = null;
      poses.forEach(([pose, size], i) => {
        if (owner[i] !== null) return;
        const d = poseDistance(pose, this.kept.pose, Math.max(size, this.kept.size));
        if (d < relink && (near === null || d < near[0])) near = [d, i];
      });
      if (near !== null) owner[near[1]] = this.kept;
    }
    const duplicate = this.version >= 3 ? duplicateFits(poses, owner, p.gate) : poses.map(() => false);
    for (const track of this.tracks) track.seen = false;
    poses.forEach(([pose, size], i) => {
      if (duplicate[i]) return;
      let track = owner[i];
      if (track === null) {
        track = new Track(this.nextId++, pose, size, timestampMs);
        this.tracks.push(track);
        owner[i] = track;
      } else {
        // 2. score: speed of the smoothed upper body, averaged over time
        const dtMs = timestampMs - track.lastSeenMs;
        const a = alpha(dtMs, p.tau_s);
        const fast = alpha(dtMs, p.fast_s);
        let total = 0.0;
        UPPER.forEach((j, n) => {
          const smooth = track.smooth[n];
          const dx = fast * (pose[j][0] - smooth[0]);
          const dy = fast * (pose[j][1] - smooth[1]);
          smooth[0] += dx;
          smooth[1] += dy;
          total += Math.sqrt(dx * dx + dy * dy);
        });
        const speed = dtMs > 0 ? total / UPPER.length / size / (dtMs / 1000.0) : 0.0;
        track.speed += a * (speed - track.speed);
        track.pose = pose;
        track.size = size;
        track.lastSeenMs = timestampMs;
      }
      track.seen = true;
    });
    this.tracks = this.tracks.filter((t) => timestampMs - t.lastSeenMs <= p.max_gap_s * 1000.0);
    if (this.kept !== null && !this.tracks.includes(this.kept)) this.kept = null;

    // 3. keep
    let best = null;
    owner.forEach((track, i) => {
      if (track === null) return; // a duplicate fit
      if (track !== this.kept && (best === null || faster(track, poses[i][1], owner[best], poses[best][1]))) best = i;
    });
    let choice = null;
    if (this.kept === null) choice = best;
    else if (best !== null && owner[best].speed > p.switch_ratio * this.kept.speed) choice = best;
    else if (this.kept.seen) choice = owner.indexOf(this.kept);
    if (choice !== null) {
      if (this.kept !== null && owner[choice] !== this.kept) this.switches += 1;
      this.kept = owner[choice];
      this.keptFrames[this.kept.id] = (this.keptFrames[this.kept.id] || 0) + 1;
    }
    return choice;
  }

  summary() {
    return { people_max: this.peopleMax, people_tracked: this.nextId, kept_frames: { ...this.keptFrames }, switches: this.switches };
  }
}
