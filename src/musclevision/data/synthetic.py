"""Synthetic BlazePose keypoint clips of exercises, generated from a kinematic skeleton.

``data=synthetic`` uses this so the whole training stack (windows, masks, augmentation, models) runs on
any machine without a single video; ``data/train_extra=synthetic`` adds such clips to the *training* side
of the real data (never to validation). Accuracy on synthetic clips means nothing about real data; they
only have to be a task a classifier must *learn*: classes differ by posture and motion, not by one constant.

A *group* is one synthetic person (body proportions, tempo, lens). For each exercise the person has
*habits*, drawn once from a generator seeded by (person, exercise), so every clip of a group shares them:
the variant, arm position, stance, depth and the camera's azimuth, height and distance (``HABITS`` lists
them; ``habits={...}`` fixes some by name, e.g. for tests or stress sets). The clips of a group vary a
little (start phase, reps, tempo, camera jitter). The variation is what real people show and 15 UCF101
training groups do not: arms held forward, crossed, behind the head, on the hips, overhead or hanging
during squats and lunges; narrow to sumo stance, quarter to deep squats; forward, reverse and walking
lunges and split squats; push-ups on the toes or the knees, narrow to wide, on the floor, hands on a bench
or feet on one; wall push-ups with the hands low or high; flat or incline bench press, bar or dumbbells;
the camera anywhere on the circle (behind the person too), from the floor to above the head, near or far.

Pipeline per clip: a rep signal ``s(t)`` in [0, 1] (0 = top of the rep) drives the exercise's joint
targets, two-bone inverse kinematics places knees and elbows with exact bone lengths, face/hand/foot
points hang off the head, wrist and ankle frames, then a pinhole camera, visibility, noise, occlusions,
MediaPipe's cheap-to-imitate failures (a person seen from behind taken as facing the camera: left and
right swapped, depth mirrored; legs swapping labels for a few frames in side views) and dropped frames
turn it into MediaPipe output. Proportions, visibility and noise are calibrated on the real clips' keypoints.

Scene frame (kinematics only): metres, y up, floor at y = 0, the person's left is +x and, when
standing, the person faces +z; bodies only ever rotate about x. Camera frame = MediaPipe world axes:
x right, y down, z away from the camera. ``world`` is the camera-frame pose minus the hip midpoint.
"""

from __future__ import annotations

import numpy as np

from musclevision.data.clips import ClipData
from musclevision.pose.skeleton import BODY_PARTS, MIRROR, NUM_LANDMARKS, SIDE, landmark

EXERCISES = ("BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups")

X, Y, Z = np.eye(3)
LR = np.array([1.0, -1.0])[:, None, None]  # per-side arrays are [2 (left, right), T, 3]
OUT = LR * X  # [2, 1, 3] each side's outward direction
DEG = np.pi / 180
# Face points (lateral, up, forward) in metres for a 1.75 m person, around the head centre (ear level).
FACE = np.array([
    (0, -0.03, 0.10),
    (0.015, 0, 0.085), (0.033, 0, 0.083), (0.048, 0, 0.077),
    (-0.015, 0, 0.085), (-0.033, 0, 0.083), (-0.048, 0, 0.077),
    (0.075, -0.005, 0), (-0.075, -0.005, 0),
    (0.025, -0.06, 0.085), (-0.025, -0.06, 0.085),
])  # fmt: skip
HIPS = [landmark("left_hip"), landmark("right_hip")]
SHOULDERS = [landmark("left_shoulder"), landmark("right_shoulder")]
CORE = np.isin(np.arange(NUM_LANDMARKS), [*BODY_PARTS["face"], *SHOULDERS, *HIPS])  # MediaPipe always "sees" them
LEGS = {*HIPS, *BODY_PARTS["left leg"], *BODY_PARTS["right leg"]}  # hips down
LEG_SWAP = np.array([MIRROR[i] if i in LEGS else i for i in range(NUM_LANDMARKS)])  # the legs trade labels
# Per exercise: rep period (s) before the person's tempo, |camera azimuth| range (deg) where people usually
# film it (0 = in front of the person's face / feet for the bench), extra camera elevation (deg), and how
# often the scene hides a body part for a whole clip (``hidden``: a part of BODY_PARTS, or none).
SETUP = {
    "BenchPress": (2.4, (20, 160), 12, {"none": 0.6, "left leg": 0.1, "right leg": 0.1, "both arms": 0.2}),
    "BodyWeightSquats": (2.3, (0, 100), 0, {"none": 0.85, "left leg": 0.075, "right leg": 0.075}),
    "Lunges": (2.6, (15, 110), 0, {"none": 0.9, "left arm": 0.05, "right arm": 0.05}),
    "PushUps": (1.9, (35, 145), 5, {"none": 0.9, "left leg": 0.05, "right leg": 0.05}),
    "WallPushups": (2.0, (40, 140), 0, {"none": 0.7, "left leg": 0.15, "right leg": 0.15}),
}
# Categorical habits and their weights (numeric habits are drawn where they are used; HABITS lists all names).
ARMS = ("forward", "raise", "crossed", "behind_head", "hips", "overhead", "hanging", "chest", "barbell")
SQUAT_ARMS = dict(zip(ARMS, (0.2, 0.12, 0.1, 0.15, 0.1, 0.05, 0.13, 0.1, 0.05)))
LUNGE_ARMS = dict(zip(ARMS, (0.08, 0.08, 0.1, 0.12, 0.12, 0.1, 0.12, 0.13, 0.15)))  # 3 of 16 real groups: bar or arms up
LUNGES = {"forward": 0.35, "reverse": 0.2, "walking": 0.2, "split": 0.25}
SUPPORT = {"toes": 0.75, "knees": 0.25}  # push-ups
SURFACE = {"floor": 0.8, "incline": 0.1, "decline": 0.1}  # push-ups: hands on a bench / feet on a bench
BEHIND = {"none": 0.3, "clip": 0.4, "bursts": 0.3}  # MediaPipe seeing a back as a front: never, always, at times
CAMERA = ("azimuth", "elevation", "fill", "hidden", "behind")
HABITS = {
    "BenchPress": (*CAMERA, "incline", "weight", "feet", "grip"),
    "BodyWeightSquats": (*CAMERA, "arms", "stance", "toe_out", "depth"),
    "Lunges": (*CAMERA, "variant", "arms", "step", "lean"),
    "PushUps": (*CAMERA, "support", "surface", "grip"),
    "WallPushups": (*CAMERA, "lean", "hands", "grip"),
}


class Habits:
    """One person's choices for one exercise, drawn from ``q`` in a fixed order; ``fixed`` overrides some by
    name (every draw still happens, so fixing one habit leaves the others as they were)."""

    def __init__(self, label: str, q: np.random.Generator, fixed: dict | None = None):
        self.label, self.q, self.fixed = label, q, dict(fixed or {})
        unknown = sorted(set(self.fixed) - set(HABITS[label]))
        if unknown:
            raise ValueError(f"unknown habit {unknown[0]!r} for synthetic {label}; known: {', '.join(HABITS[label])}")

    def __call__(self, name: str, value):
        return self.fixed.get(name, value)

    def pick(self, name: str, weights: dict) -> str:
        options, p = list(weights), np.array(list(weights.values()))
        value = options[self.q.choice(len(options), p=p / p.sum())]
        if name in self.fixed and self.fixed[name] not in weights:
            raise ValueError(f"habit {name}={self.fixed[name]!r} for synthetic {self.label}: use one of {', '.join(options)}")
        return self(name, value)


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _sag(theta):
    """Unit vectors in the sagittal (y-z) plane; theta goes from up (+y) towards forward (+z)."""
    theta = np.asarray(theta, dtype=float)
    return np.stack([np.zeros_like(theta), np.cos(theta), np.sin(theta)], axis=-1)


def _smoothstep(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _ik(root, target, l1, l2, hint):
    """Two-bone IK -> (middle joint, end): exact bone lengths, bending towards ``hint``; out-of-reach
    targets slide along the root-target line, so a straight limb stays straight instead of stretching."""
    d = target - root
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(n, 1e-9)
    n = np.clip(n, abs(l1 - l2) + 1e-3, 0.999 * (l1 + l2))
    a = (l1**2 - l2**2 + n**2) / (2 * n)
    p = _unit(hint - (hint * u).sum(-1, keepdims=True) * u)
    return root + a * u + np.sqrt(np.maximum(l1**2 - a**2, 0)) * p, root + n * u


def sample_subject(rng: np.random.Generator) -> dict:
    """One synthetic person + lens: segment lengths (m), tempo, range of motion. The segment ratios are those of
    MediaPipe's world skeleton on the real clips (median bone / torso: upper arm 0.46, forearm 0.47, thigh 0.81,
    shank 0.72, shoulders 0.67, hips 0.45), not anthropometric tables (upper arm 0.64, shank 0.85)."""
    h = rng.uniform(1.55, 1.95)
    r = lambda: rng.uniform(0.93, 1.07)  # noqa: E731
    return dict(
        seed=int(rng.integers(2**31)), H=h, k=h / 1.75, ankle=0.04 * h,
        thigh=0.224 * h * r(), shank=0.21 * h * r(), upper=0.134 * h * r(), fore=0.13 * h * r(),
        torso=0.28 * h * r(), neck=0.13 * h * r(), sw=0.19 * h * r(), hw=0.123 * h * r(),
        tempo=rng.uniform(0.6, 1.5), rom=rng.uniform(0.85, 1.08),
        hfov=rng.uniform(45, 75) * DEG, roll=rng.uniform(-4, 4) * DEG, shift=rng.uniform(-0.12, 0.12, 2),
    )  # fmt: skip


def _reps(q, rng, frames, fps, period):
    """Rep signal s [T] in [0, ~1] (0 = top), rep index k [T], rising half ``up`` [T] and phase [T] (radians):
    asymmetric down/up, pauses, tempo drift, depth per rep."""
    asym, gamma, drift_amp = q.uniform(-0.35, 0.35), q.uniform(0.8, 1.6), q.uniform(0.03, 0.12)
    t = np.arange(frames) / fps
    drift = np.sin(2 * np.pi * rng.uniform(0.05, 0.3, (3, 1)) * t + rng.uniform(0, 2 * np.pi, (3, 1))).sum(0)
    freq = (1 + drift_amp * drift / 1.2) / (period * rng.uniform(0.9, 1.1))
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(freq) / fps
    phase = phase + asym * np.sin(phase)  # monotone warp: descent and ascent take different times
    turns = phase / (2 * np.pi)
    k = np.floor(turns).astype(int)
    depth = 1 + 0.07 * rng.standard_normal(k.max() - k.min() + 1)[k - k.min()]  # changes only at s = 0
    return ((1 - np.cos(phase)) / 2) ** gamma * depth, k, turns - k >= 0.5, phase


# A clip that starts more than this far into a repetition (fraction of its cycle; the bottom is at 0.5) has not
# shown its start: that first repetition is not counted, as in the annotations of real clips (a rep counts from
# rest to rest; one that starts early in its descent still shows most of it).
REP_START_GRACE = 0.25


def rep_ends(k: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Frames where a counted repetition ends: the rep index steps up (back at the top); the first one only when
    the clip started at rest (within REP_START_GRACE of a cycle's start)."""
    ends = np.flatnonzero(np.diff(k) > 0) + 1
    started_at_rest = (phase[0] / (2 * np.pi)) % 1.0 <= REP_START_GRACE
    return ends if started_at_rest or len(ends) == 0 else ends[1:]


def _trunk(b, hip, theta, head):
    """Hips, shoulders and torso/head frames from the hip midpoint [T, 3] and the torso angle (rotation about x)."""
    theta = np.broadcast_to(theta, hip.shape[:1])
    sh = hip + b["torso"] * _sag(theta)
    return dict(hips=hip + LR * b["hw"] / 2 * X, shm=sh, sh=sh + LR * b["sw"] / 2 * X, up=_sag(theta),
                front=_sag(theta + np.pi / 2), hup=_sag(theta + head), hfront=_sag(theta + head + np.pi / 2))  # fmt: skip


def _arms(b, j, target, hint):
    j["elb"], j["wr"] = _ik(j["sh"], target, b["upper"], b["fore"], hint)


def _arm_style(b, j, style, s):
    """Elbows and wrists [2, T, 3] for arms held in ``style`` while the legs work (squats, lunges)."""
    kk, reach = b["k"], 0.97 * (b["upper"] + b["fore"])
    head = j["shm"] + b["neck"] * j["hup"]  # [T, 3] head centre, ear level
    if style in ("forward", "raise"):  # held forward at shoulder height, or raised there while descending
        start = 88 if style == "forward" else 165  # degrees from up: 180 = hanging
        arm = _sag((start + (88 - start) * np.minimum(s, 1)) * DEG)
        _arms(b, j, j["sh"] + reach * arm - 0.04 * kk * OUT, -Y + 0.3 * OUT)
    elif style == "crossed":  # on the chest
        _arms(b, j, j["sh"][::-1] + kk * (0.08 * j["front"] - 0.05 * j["up"]), 0.5 * (j["front"] + OUT) - j["up"])
    elif style == "behind_head":  # fingers laced behind the head, elbows out
        _arms(b, j, head + kk * (0.03 * OUT - 0.1 * j["hfront"] + 0.02 * j["hup"]), OUT + 0.5 * j["up"])
    elif style == "hips":
        _arms(b, j, j["hips"] + kk * (0.08 * OUT + 0.05 * j["up"]), OUT - 0.6 * j["front"])
    elif style == "overhead":  # arms straight up (vertical, whatever the torso does)
        _arms(b, j, j["sh"] + reach * _unit(Y + 0.2 * OUT + 0.1 * Z), OUT - Z)
    elif style == "hanging":  # at the sides, swinging forward a little on the way down
        _arms(b, j, j["sh"] + reach * _sag((180 - 25 * np.minimum(s, 1)) * DEG) + 0.06 * kk * OUT, 0.2 * OUT - Z)
    elif style == "chest":  # hands clasped in front of the chest (goblet)
        _arms(b, j, j["shm"] + kk * (0.25 * j["front"] - 0.15 * j["up"] + 0.02 * OUT), OUT - j["up"])
    else:  # "barbell": a bar across the upper back, hands gripping it wide beside the shoulders
        _arms(b, j, j["sh"] + kk * (0.18 * OUT + 0.04 * j["up"] - 0.07 * j["front"]), -j["up"] - 0.4 * j["front"])


def _squats(b, s, k, up, h, q, rng):
    depth = np.minimum(s * h("depth", q.uniform(0.7, 1.35)), 1.35)  # 1 = thighs parallel, 0.5 = quarter squat
    shank = q.uniform(20, 35) * DEG * depth  # knees travel forward over the toes
    knee = shank + (8 + q.uniform(65, 90) * depth) * DEG  # the real clips' squats: knees at 49 deg (median) at the bottom
    lean = (q.uniform(0, 8) + q.uniform(25, 45) * depth) * DEG  # torso leans to keep balance over the feet
    stance = h("stance", q.uniform(-0.01, 0.16)) * b["k"]  # each foot this far outside its hip (narrow .. sumo)
    splay = np.sqrt(1 - (stance / (b["thigh"] + b["shank"])) ** 2)  # legs spread sideways: hips sit lower
    hip = b["ankle"] * Y + splay * (b["shank"] * _sag(shank) + b["thigh"] * _sag(shank - knee))
    j = _trunk(b, hip, lean, -q.uniform(0.4, 0.9) * lean)  # head stays up, eyes forward
    toe = h("toe_out", q.uniform(0, 35)) * DEG
    j["foot"], j["sole"] = np.cos(toe) * Z + np.sin(toe) * OUT, Y
    feet = (b["hw"] / 2 + stance) * OUT + b["ankle"] * Y
    j["knee"], j["ank"] = _ik(j["hips"], feet, b["thigh"], b["shank"], j["foot"])  # knees over toes
    _arm_style(b, j, h.pick("arms", SQUAT_ARMS), s)
    return j


def _lunges(b, s, k, up, h, q, rng):
    kk, variant, step = b["k"], h.pick("variant", LUNGES), h("step", q.uniform(0.18, 0.36)) * b["H"]
    if variant == "split":  # split squat: feet stay put
        go, down, left_front = np.ones_like(s), s, np.full(s.shape, rng.random() < 0.5)
    else:  # a foot steps (first 30% of the descent), lunge, the feet come together again; legs alternate every rep
        go, down, left_front = _smoothstep(s / 0.3), np.clip((s - 0.3) / 0.7, 0, 1), k % 2 == 0
    down = np.clip(down * b["rom"], 0, 1.05)
    rho = 40 * DEG * down  # back heel rises onto the toes (toe fixed on the floor)
    lift, zero = 0.05 * kk * np.sin(np.pi * go), np.zeros_like(s)  # a stepping foot clears the floor
    if variant == "reverse":  # the back foot steps back and returns
        fz, bz, fy, by = zero, -go * step, zero, lift
    elif variant == "walking":  # the front foot steps forward; rising, the back foot comes to meet it
        base = (k - k.min()) * step
        fz, bz = base + np.where(up, step, go * step), base + np.where(up, (1 - go) * step, 0)
        fy, by = np.where(up, 0, lift), np.where(up, lift, 0)
    else:  # forward lunge (step forward and back) or split squat
        fz, bz, fy, by = go * step, zero, lift * (variant == "forward"), zero
    front = np.stack([zero, b["ankle"] + fy, fz], -1)
    back = np.stack([zero, 0.01 + kk * (0.15 * np.sin(rho) + 0.06 * np.cos(rho)) + by,
                     bz + kk * (0.15 * (1 - np.cos(rho)) + 0.06 * np.sin(rho))], -1)  # fmt: skip
    lf = left_front[:, None]
    w = b["hw"] / 2 + 0.02 * kk
    ankles = np.stack([np.where(lf, front, back), np.where(lf, back, front)]) + w * OUT
    hz = 0.5 * (front[:, 2] + back[:, 2])
    legs = 0.985 * (b["thigh"] + b["shank"])
    top = (ankles[..., 1] + np.sqrt(legs**2 - (hz - ankles[..., 2]) ** 2 - (w - b["hw"] / 2) ** 2)).min(0)
    bottom = front[:, 1] + 0.95 * b["shank"] + 0.06 * kk  # front thigh about horizontal, back knee near floor
    hip = np.stack([zero, top + (bottom - top) * down, hz], -1)
    j = _trunk(b, hip, (h("lean", q.uniform(0, 15)) + 4 * s) * DEG, q.uniform(-5, 10) * DEG)  # torso about upright
    j["knee"], j["ank"] = _ik(j["hips"], ankles, b["thigh"], b["shank"], Z + 0.1 * OUT)
    bf, bs = _sag(np.pi / 2 + rho), _sag(rho)
    zf, ys = np.broadcast_to(Z, bf.shape), np.broadcast_to(Y, bs.shape)
    j["foot"] = np.stack([np.where(lf, zf, bf), np.where(lf, bf, zf)])
    j["sole"] = np.stack([np.where(lf, ys, bs), np.where(lf, bs, ys)])
    _arm_style(b, j, h.pick("arms", LUNGE_ARMS), s)
    return j


def _pushups(b, s, k, up, h, q, rng):
    kk, reach, torso = b["k"], b["upper"] + b["fore"], b["torso"]
    knees, surface = h.pick("support", SUPPORT) == "knees", h.pick("surface", SURFACE)
    bench = q.uniform(0.3, 0.45)  # bench height (m) under the hands (incline) or the feet (decline)
    grip = max(h("grip", q.uniform(-0.08, 0.25)) * kk, 0.05 - b["sw"] / 2)  # per hand beyond the shoulders (< 0: narrow)
    hand_z, sag = q.uniform(-0.03, 0.1) * kk, q.uniform(-6, 8) * DEG
    # The straight body pivots about the toes (or the knees); hands on the floor or on the bench.
    pivot_y, legs = (0.06 * kk, b["thigh"]) if knees else (0.15 * kk, b["thigh"] + b["shank"])
    pivot_y += bench * (surface == "decline")
    wrist_y = 0.04 * kk + bench * (surface == "incline")
    top = wrist_y + np.sqrt((q.uniform(0.88, 0.97) * reach) ** 2 - grip**2 - hand_z**2)  # arms about straight
    hs = top + (wrist_y + q.uniform(0.2, 0.32) * kk - top) * np.clip(s * b["rom"], 0, 1.05)  # shoulder height
    hs = np.append(hs, top)
    # Solve the body angle beta that gives shoulder height hs.
    beta = np.arcsin(np.clip((hs - pivot_y) / (legs + torso), -1, 1))
    for _ in range(3):
        f = pivot_y + legs * np.sin(beta - sag) + torso * np.sin(beta + sag) - hs
        beta -= f / (legs * np.cos(beta - sag) + torso * np.cos(beta + sag))
    sz_top = legs * np.cos(beta[-1] - sag) + torso * np.cos(beta[-1] + sag)
    beta = beta[:-1]
    leg = _sag(np.pi / 2 - beta + sag)
    j = _trunk(b, pivot_y * Y + legs * leg, np.pi / 2 - beta - sag, q.uniform(-25, 10) * DEG)
    leg = _unit(leg - q.uniform(-0.03, 0.12) * OUT)  # [2, T, 3] (towards the hip) feet together or apart
    j["knee"] = j["hips"] - b["thigh"] * leg
    if knees:  # shins on the floor or feet raised behind
        lift = q.uniform(5, 60) * DEG
        j["ank"] = j["knee"] + b["shank"] * (np.sin(lift) * Y - np.cos(lift) * Z)
        j["foot"], j["sole"] = np.sin(lift) * Y - np.cos(lift) * Z, -np.cos(lift) * Y - np.sin(lift) * Z
    else:
        j["ank"] = j["knee"] - b["shank"] * leg
        pf = q.uniform(0, 25) * DEG
        j["foot"], j["sole"] = _sag(np.pi - beta + sag + pf), _sag(np.pi / 2 - beta + sag + pf)
    hands = (b["sw"] / 2 + grip) * OUT + wrist_y * Y + (sz_top + hand_z) * Z
    flare = np.clip(q.uniform(15, 60) + 60 * grip / kk, 5, 80) * DEG  # elbows back towards the feet; out when wide
    _arms(b, j, hands, -np.cos(flare) * Z + np.sin(flare) * OUT)
    rot = q.uniform(-15, 35) * DEG
    j["hand"] = np.cos(rot) * Z + np.sin(rot) * OUT  # palms flat, fingers forward
    return j


def _bench(b, s, k, up, h, q, rng):
    kk, reach, frames = b["k"], b["upper"] + b["fore"], len(s)
    incline = h("incline", q.uniform(15, 45) if q.random() < 0.4 else 0.0) * DEG  # back rest raised (deg)
    hip = np.tile((q.uniform(0.40, 0.48) + 0.09 * kk) * Y, (frames, 1))  # lying on the bench, head at -z
    j = _trunk(b, hip, (q.uniform(0, 8) - 90) * DEG + incline, q.uniform(-10, 10) * DEG)
    feet_up = h.pick("feet", {"floor": 0.85, "up": 0.15}) == "up"
    foot_w, dy = b["hw"] / 2 + q.uniform(0.0, 0.12) * kk, hip[0, 1] - b["ankle"]
    foot_z = min(q.uniform(0.1, 0.3) * b["H"], np.sqrt((0.9 * (b["thigh"] + b["shank"])) ** 2 - dy**2))
    if feet_up:  # thighs about vertical, shins about level: feet in the air over the bench
        feet = hip + foot_w * OUT + 0.8 * b["thigh"] * Y + 0.9 * b["shank"] * Z
    else:  # feet flat on the floor, knees bent up
        feet = foot_w * OUT + b["ankle"] * Y + foot_z * Z
    j["knee"], j["ank"] = _ik(j["hips"], feet, b["thigh"], b["shank"], Y + 0.3 * OUT)
    toe = q.uniform(5, 30) * DEG
    j["foot"], j["sole"] = np.cos(toe) * Z + np.sin(toe) * OUT, Y
    grip = h("grip", q.uniform(0.08, 0.25)) * kk
    dumbbells = h.pick("weight", {"bar": 0.75, "dumbbells": 0.25}) == "dumbbells"
    top, bottom = np.sqrt((0.96 * reach) ** 2 - grip**2), q.uniform(0.18, 0.32) * kk  # hands over the shoulders
    depth = np.clip(s * b["rom"], 0, 1.05)
    press = _unit(Y + j["front"])  # straight up on a flat bench, tilted towards the feet on an incline
    towards_feet = q.uniform(0.0, 0.12) + q.uniform(0.03, 0.12) * s  # the bar comes down to the lower chest
    bar = j["shm"] + (top + (bottom - top) * depth)[:, None] * press + kk * towards_feet[:, None] * Z
    wide = grip + 0.1 * kk * depth[:, None] * dumbbells  # dumbbells: hands drift apart at the bottom
    flare = q.uniform(30, 75) * DEG
    _arms(b, j, bar + (b["sw"] / 2 + wide) * OUT, np.sin(flare) * OUT + np.cos(flare) * Z - 0.2 * Y)
    return j


def _wall(b, s, k, up, h, q, rng):
    kk, reach, legs = b["k"], b["upper"] + b["fore"], b["thigh"] + b["shank"]
    body, lean = legs + b["torso"], h("lean", q.uniform(3, 18)) * DEG  # straight body pivoting about the ankles
    grip = h("grip", q.uniform(-0.05, 0.2)) * kk
    hand_dy = h("hands", q.uniform(-0.35, 0.08)) * kk  # hand height relative to the shoulders at the top
    sz = body * np.sin(lean)
    wall = sz + np.sqrt((0.96 * reach) ** 2 - grip**2 - hand_dy**2)  # arms straight at the top
    bottom = min(wall - q.uniform(0.65, 0.85) * reach, sz + 0.3 * reach)  # real wall push-ups are shallow
    sz = sz + (bottom - sz) * np.clip(s * b["rom"], 0, 1.05)
    lam = np.arcsin(sz / body)
    j = _trunk(b, b["ankle"] * Y + legs * _sag(lam), lam, q.uniform(-15, 5) * DEG)
    j["knee"] = j["hips"] - b["thigh"] * _sag(lam)
    j["ank"] = j["knee"] - b["shank"] * _sag(lam)
    j["foot"], j["sole"] = Z, Y
    hands = (b["sw"] / 2 + grip) * OUT + (b["ankle"] + body * np.cos(lean) + hand_dy) * Y + wall * Z
    flare = q.uniform(20, 70) * DEG
    _arms(b, j, hands, np.sin(flare) * OUT - np.cos(flare) * Y)
    rot = q.uniform(0, 30) * DEG
    j["hand"] = np.cos(rot) * Y + np.sin(rot) * OUT  # palms on the wall, fingers up
    return j


KINEMATICS = {"BenchPress": _bench, "BodyWeightSquats": _squats, "Lunges": _lunges, "PushUps": _pushups,
              "WallPushups": _wall}  # fmt: skip


def _assemble(b, j):
    """33 scene-frame points [T, 33, 3] from joints and the head / hand / foot frames."""
    kk, frames = b["k"], len(j["shm"])
    full = lambda v: np.broadcast_to(v, (2, frames, 3))  # noqa: E731
    p = np.empty((frames, NUM_LANDMARKS, 3))
    c = j["shm"] + b["neck"] * j["hup"]
    p[:, list(BODY_PARTS["face"])] = c[:, None] + kk * (
        FACE[:, :1] * X + FACE[:, 1:2] * j["hup"][:, None] + FACE[:, 2:] * j["hfront"][:, None]
    )
    wr = j["wr"]
    hand = _unit(full(j["hand"])) if "hand" in j else _unit(wr - j["elb"])
    thumb = -OUT + 0.4 * j["up"]  # thumbs medial (and towards the head when that is ambiguous)
    thumb = _unit(thumb - (thumb * hand).sum(-1, keepdims=True) * hand)
    foot, sole = _unit(full(j["foot"])), full(j["sole"])
    for name, pts in (  # each [2 (left, right), T, 3]
        ("shoulder", j["sh"]), ("elbow", j["elb"]), ("wrist", wr), ("pinky", wr + kk * (0.075 * hand - 0.025 * thumb)),
        ("index", wr + kk * (0.085 * hand + 0.02 * thumb)), ("thumb", wr + kk * (0.045 * hand + 0.04 * thumb)),
        ("hip", j["hips"]), ("knee", j["knee"]), ("ankle", j["ank"]), ("heel", j["ank"] - kk * (0.025 * foot + 0.03 * sole)),
        ("foot_index", j["ank"] + kk * (0.13 * foot - 0.055 * sole)),
    ):  # fmt: skip
        p[:, [landmark(f"left_{name}"), landmark(f"right_{name}")]] = pts.transpose(1, 0, 2)
    return p


def _smooth_noise(rng, shape):
    """Unit-variance noise, partly white and partly smoothed over 5 frames (tracker jitter is both)."""
    w = rng.standard_normal((shape[0] + 4, *shape[1:]))
    smooth = (w[:-4] + w[1:-3] + w[2:-2] + w[3:-1] + w[4:]) / np.sqrt(5)
    return 0.6 * rng.standard_normal(shape) + 0.8 * smooth


def _camera(label, h, q, wide_views):
    """Where this person films this exercise: azimuth (deg, 0 = in front, 180 = behind), elevation (deg above the
    horizontal through the body's centre), fill (share of the frame the body spans), a part the scene hides
    (or "none"), and MediaPipe's habits here."""
    lo, hi = SETUP[label][1]
    typical = q.choice([-1.0, 1.0]) * q.uniform(lo, hi)
    anywhere = q.uniform(-180, 180) if label != "WallPushups" else q.choice([-1.0, 1.0]) * q.uniform(35, 180)  # not in the wall
    return dict(
        azimuth=h("azimuth", anywhere if q.random() < wide_views else typical),
        elevation=h("elevation", q.uniform(-15, 35) + SETUP[label][2]), fill=h("fill", q.uniform(0.3, 0.95)),
        hidden=h.pick("hidden", {**dict.fromkeys(BODY_PARTS, 0.0), **SETUP[label][3]}),
        behind=h.pick("behind", BEHIND),
    )  # fmt: skip


def _bursts(rng, frames, count, low, high):
    """[T] bool: ``count`` random stretches of ``low``..``high`` frames."""
    on = np.zeros(frames, bool)
    for _ in range(count):
        start = rng.integers(frames)
        on[start : start + rng.integers(low, high + 1)] = True
    return on


def _render(b, cam, p, j, rng, fps, width, height, noise, missing_rate, failures):
    frames = len(p)
    yaw = (cam["azimuth"] + rng.normal(0, 4)) * DEG
    elev = (cam["elevation"] + rng.normal(0, 2)) * DEG
    roll = b["roll"] + rng.normal(0, 1) * DEG
    f = width / (2 * np.tan(b["hfov"] / 2))
    lo_pt, hi_pt = p.min((0, 1)), p.max((0, 1))
    dist = max((hi_pt - lo_pt).max() * f / (cam["fill"] * min(width, height)), 1.2) * rng.uniform(0.95, 1.05)
    back = np.array([np.sin(yaw) * np.cos(elev), np.sin(elev), np.cos(yaw) * np.cos(elev)])  # target -> camera
    cam_pos = (lo_pt + hi_pt) / 2 + dist * back
    fz = -back
    fx = _unit(np.cross(fz, Y))
    fy = np.cross(fz, fx)
    fx, fy = np.cos(roll) * fx + np.sin(roll) * fy, np.cos(roll) * fy - np.sin(roll) * fx
    rot = np.stack([fx, fy, fz])  # rows: camera x right, y down, z forward
    pc = (p - cam_pos) @ rot.T
    hip = pc[:, HIPS].mean(1, keepdims=True)
    shift = b["shift"] + rng.normal(0, 0.015, 2)
    img = np.empty((frames, NUM_LANDMARKS, 4))
    img[..., :2] = f * pc[..., :2] / pc[..., 2:] / [width, height] + 0.5 + shift
    img[..., 2] = (pc[..., 2] - hip[..., 2]) * f / (hip[..., 2] * width)  # MediaPipe z: x's scale, 0 at hips
    world = pc - hip
    # Visibility (MediaPipe's logit-like confidence), as measured on the real clips: face, shoulders and hips
    # are near 1 whatever the view (from behind too); limbs drop on the far side of the body, outside the frame,
    # in occlusion bursts, and for the whole clip where the scene hides a part (a bench, a wall, the frame edge).
    normal = np.broadcast_to(np.asarray(SIDE, float)[:, None] * X, p.shape).copy()  # each landmark faces out to its side
    facing = (_unit(normal) * _unit(cam_pos - p)).sum(-1)
    logit = np.where(CORE, 5.5 + facing, 2.2 + 2.5 * facing)
    logit += rng.normal(0, 0.3, NUM_LANDMARKS) + rng.normal(0, 0.2, logit.shape)
    inside = np.minimum(np.minimum(img[..., 0], 1 - img[..., 0]), np.minimum(img[..., 1], 1 - img[..., 1]))
    logit -= 8 * np.clip(-inside / 0.05, 0, 1)
    occluded = np.zeros(logit.shape)
    occluded[:, list(BODY_PARTS.get(cam["hidden"], ()))] = rng.uniform(5, 8)
    limbs = [ids for name, ids in BODY_PARTS.items() if name != "face"]
    for _ in range(rng.poisson(0.25 * frames / fps)):
        start, length = rng.integers(frames), int(rng.uniform(0.3, 1.5) * fps)
        occluded[start : start + length, list(limbs[rng.integers(len(limbs))])] += rng.uniform(2.5, 4.5)
    vis = 1 / (1 + np.exp(-(logit - occluded)))
    img[..., 3] = vis
    # Measurement noise: worse for unsure and occluded points; depth is the least reliable axis.
    # World points are regressed by the model, so their noise is metric (bone lengths on the real clips: 7 %
    # between quartiles), not growing with the camera distance.
    scale = noise * (1 + 1.5 * (1 - vis))  # (a hidden limb is guessed, not scattered: real knees stay plausible)
    img[..., :3] += scale[..., None] * _smooth_noise(rng, (frames, NUM_LANDMARKS, 3)) * [1, 1, 3]
    world += 2.0 * scale[..., None] * _smooth_noise(rng, world.shape) * [1, 1, 2]
    # Label mix-ups. From behind (the torso's horizontal front points away from the camera), MediaPipe often
    # sees a person facing it: the same pixels with left and right swapped and depth mirrored (the face keeps
    # its low visibility). Seen from the side (or lying), the legs trade labels for a few frames now and then.
    front, to_cam = j["front"].mean(0) * [1, 0, 1], (cam_pos - p.mean((0, 1))) * [1, 0, 1]
    towards = (_unit(front) * _unit(to_cam)).sum() if np.linalg.norm(front) > 0.5 else 0.0
    bursts = _bursts(rng, frames, rng.integers(1, 4), int(0.3 * fps), int(1.5 * fps))
    flip = np.full(frames, cam["behind"] == "clip") | (bursts & (cam["behind"] == "bursts"))
    flip &= failures and towards < -0.3
    img[flip, :, 2], world[flip, :, 2] = -img[flip, :, 2], -world[flip, :, 2]
    img[flip], world[flip] = img[flip][:, MIRROR], world[flip][:, MIRROR]
    legs = _bursts(rng, frames, rng.integers(1, 4), 2, int(0.4 * fps)) & (rng.random() < 0.3 and failures and abs(towards) < 0.5)
    img[legs], world[legs] = img[legs][:, LEG_SWAP], world[legs][:, LEG_SWAP]
    # Missing detections: short bursts, about missing_rate of the frames, never more than half the clip.
    missing, target = np.zeros(frames, bool), min(rng.binomial(frames, missing_rate), frames // 2)
    while (left := target - missing.sum()) > 0:
        start = rng.integers(frames)
        missing[start : start + min(rng.integers(1, 7), left)] = True
    img[missing], world[missing] = np.nan, np.nan
    return img.astype(np.float32), world.astype(np.float32)


def _check(labels):
    unknown = [c for c in labels if c not in EXERCISES]
    if unknown:
        raise ValueError(f"unknown synthetic exercise class {unknown[0]!r}; supported: {', '.join(EXERCISES)}")


def synthesize_clip(
    label: str, rng: np.random.Generator, subject: dict | None = None, *, fps: float = 25.0,
    seconds: float | tuple[float, float] = (3.0, 8.0), width: int = 320, height: int = 240,
    noise: float = 0.004, missing_rate: float = 0.03, wide_views: float = 0.35, failures: bool = True,
    habits: dict | None = None, video_id: str | None = None, group: str = "g00",
) -> ClipData:  # fmt: skip
    """One clip of ``label`` performed by ``subject`` (from :func:`sample_subject`; a new one if None).

    ``rng`` drives only what varies between a group's clips; the subject's habits for this exercise come
    from a generator seeded by (subject seed, exercise), so every clip of a group shares them. ``wide_views``:
    share of people who film from anywhere on the circle rather than where the exercise is usually filmed.
    ``failures``: imitate MediaPipe's label mix-ups; False: exact kinematics.
    ``habits`` fixes habits by name (``HABITS[label]``), e.g. ``{"arms": "behind_head", "azimuth": 180}``."""
    _check([label])
    b = sample_subject(rng) if subject is None else subject
    q = np.random.default_rng([b["seed"], EXERCISES.index(label)])
    h = Habits(label, q, habits)
    frames = max(2, int(round(rng.uniform(*np.broadcast_to(seconds, 2)) * fps)))
    cam = _camera(label, h, q, wide_views)
    s, k, up, phase = _reps(q, rng, frames, fps, SETUP[label][0] * b["tempo"])
    j = KINEMATICS[label](b, s, k, up, h, q, rng)
    p = _assemble(b, j)
    image, world = _render(b, cam, p, j, rng, fps, width, height, noise, missing_rate, failures)
    vid = video_id or f"{label}/v_{label}_{group}_c00"
    return ClipData(vid, label, group, image, world, float(fps), int(width), int(height), rep_ends=rep_ends(k, phase))


def synthesize_dataset(
    classes, groups: int = 12, clips_per_group: int = 3, seed: int = 0, fps: float = 25.0,
    seconds: tuple[float, float] = (3.0, 8.0), width: int = 320, height: int = 240,
    noise: float = 0.004, missing_rate: float = 0.03, wide_views: float = 0.35, failures: bool = True,
    habits: dict | None = None, group_prefix: str = "g",
) -> list[ClipData]:  # fmt: skip
    """``groups`` synthetic people x ``classes`` x ``clips_per_group`` clips, deterministic in ``seed``.

    Every class's clips depend only on (seed, group, class, clip), not on which other classes are asked for.
    ``habits`` fixes habits for the classes that have them. Groups are named ``<group_prefix><NN>``."""
    classes, habits = list(classes), dict(habits or {})
    _check(classes)
    known = {name for label in classes for name in HABITS[label]}
    if set(habits) - known:
        raise ValueError(f"unknown habit {sorted(set(habits) - known)[0]!r} for synthetic {', '.join(classes)}; "
                         f"known: {', '.join(sorted(known))}")  # fmt: skip
    clips = []
    for g in range(1, groups + 1):
        subject = sample_subject(np.random.default_rng([seed, g]))
        name = f"{group_prefix}{g:02d}"
        for label in classes:
            for c in range(1, clips_per_group + 1):
                rng = np.random.default_rng([seed, g, EXERCISES.index(label), c])
                clips.append(synthesize_clip(
                    label, rng, subject, fps=fps, seconds=seconds, width=width, height=height, noise=noise,
                    missing_rate=missing_rate, wide_views=wide_views, failures=failures,
                    habits={k: v for k, v in habits.items() if k in HABITS[label]},
                    video_id=f"{label}/v_{label}_{name}_c{c:02d}", group=name,
                ))  # fmt: skip
    return clips
