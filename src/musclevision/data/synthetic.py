"""Synthetic BlazePose keypoint clips of exercises, generated from a kinematic skeleton.

``data=synthetic`` uses this so the whole training stack (windows, masks, augmentation, models) runs on
any machine without a single video. Accuracy on it means nothing about real data; it only has to be a
task a classifier must *learn*: classes differ by posture and motion, not by one constant.

A *group* is one synthetic person filmed in one scene (body proportions, camera, tempo, range of
motion, and per-exercise habits such as stance or grip); the clips of a group vary a little (start
phase, reps, tempo, camera jitter). Pipeline per clip: a rep signal ``s(t)`` in [0, 1] (0 = top of
the rep) drives the exercise's joint targets, two-bone inverse kinematics places knees and elbows
with exact bone lengths, face/hand/foot points hang off the head, wrist and ankle frames, then a
pinhole camera, visibility, noise, occlusions and dropped frames turn it into MediaPipe output.

Scene frame (kinematics only): metres, y up, floor at y = 0, the person's left is +x and, when
standing, the person faces +z; bodies only ever rotate about x. Camera frame = MediaPipe world axes:
x right, y down, z away from the camera. ``world`` is the camera-frame pose minus the hip midpoint.
"""

from __future__ import annotations

import numpy as np

from musclevision.data.clips import ClipData
from musclevision.pose.skeleton import NUM_LANDMARKS

EXERCISES = ("BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups")

X, Y, Z = np.eye(3)
SIDE = np.array([1.0, -1.0])[:, None, None]  # per-side arrays are [2 (left, right), T, 3]
DEG = np.pi / 180
# Face points (lateral, up, forward) in metres for a 1.75 m person, around the head centre (ear level).
FACE = np.array([
    (0, -0.03, 0.10),
    (0.015, 0, 0.085), (0.033, 0, 0.083), (0.048, 0, 0.077),
    (-0.015, 0, 0.085), (-0.033, 0, 0.083), (-0.048, 0, 0.077),
    (0.075, -0.005, 0), (-0.075, -0.005, 0),
    (0.025, -0.06, 0.085), (-0.025, -0.06, 0.085),
])  # fmt: skip
# Which way each landmark faces (for self-occlusion): +1 left side, -1 right side, 0 midline.
LATERAL = np.concatenate([np.sign(FACE[:, 0]), np.where(np.arange(11, NUM_LANDMARKS) % 2, 1.0, -1.0)])
LIMBS = ([*range(11)], [11, 13, 15, 17, 19, 21], [12, 14, 16, 18, 20, 22], [23, 25, 27, 29, 31], [24, 26, 28, 30, 32])
# Per exercise: rep period (s) before the person's tempo, |camera yaw| range (deg) where people film it
# (0 = in front of the person's face / feet for lying poses), extra camera elevation (deg).
SETUP = {
    "BenchPress": (2.4, (20, 160), 12),
    "BodyWeightSquats": (2.3, (0, 100), 0),
    "Lunges": (2.6, (15, 110), 0),
    "PushUps": (1.9, (35, 145), 10),
    "WallPushups": (2.0, (40, 140), 0),
}


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _sag(theta):
    """Unit vectors in the sagittal (y-z) plane; theta goes from up (+y) towards forward (+z)."""
    theta = np.asarray(theta, dtype=float)
    return np.stack([np.zeros_like(theta), np.cos(theta), np.sin(theta)], axis=-1)


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
    """One synthetic person + scene: segment lengths (m, anthropometric ratios of height), habits, camera."""
    h = rng.uniform(1.55, 1.95)
    r = lambda: rng.uniform(0.93, 1.07)  # noqa: E731
    return dict(
        seed=int(rng.integers(2**31)), H=h, k=h / 1.75, ankle=0.04 * h,
        thigh=0.245 * h * r(), shank=0.246 * h * r(), upper=0.186 * h * r(), fore=0.146 * h * r(),
        torso=0.29 * h * r(), neck=0.115 * h * r(), sw=0.215 * h * r(), hw=0.12 * h * r(),
        tempo=rng.uniform(0.75, 1.3), rom=rng.uniform(0.85, 1.08),
        hfov=rng.uniform(45, 75) * DEG, yaw=rng.uniform(), yaw_sign=rng.choice([-1.0, 1.0]),
        elev=rng.uniform(-5, 25) * DEG, roll=rng.uniform(-4, 4) * DEG, fill=rng.uniform(0.45, 0.85),
        shift=rng.uniform(-0.12, 0.12, 2),
    )  # fmt: skip


def _reps(q, rng, frames, fps, period):
    """Rep signal s in [0, ~1] (0 = top), rep index and phase (radians): asymmetric down/up, pauses, tempo drift,
    depth per rep."""
    asym, gamma, drift_amp = q.uniform(-0.35, 0.35), q.uniform(0.8, 1.6), q.uniform(0.03, 0.12)
    t = np.arange(frames) / fps
    drift = np.sin(2 * np.pi * rng.uniform(0.05, 0.3, (3, 1)) * t + rng.uniform(0, 2 * np.pi, (3, 1))).sum(0)
    freq = (1 + drift_amp * drift / 1.2) / (period * rng.uniform(0.9, 1.1))
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(freq) / fps
    phase = phase + asym * np.sin(phase)  # monotone warp: descent and ascent take different times
    k = np.floor(phase / (2 * np.pi)).astype(int)
    depth = 1 + 0.07 * rng.standard_normal(k.max() - k.min() + 1)[k - k.min()]  # changes only at s = 0
    return ((1 - np.cos(phase)) / 2) ** gamma * depth, k, phase


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
    """Hips, shoulders and torso/head frames from the hip midpoint and the torso angle (rotation about x)."""
    theta = np.broadcast_to(theta, hip.shape[:1])
    sh = hip + b["torso"] * _sag(theta)
    return dict(hips=hip + SIDE * b["hw"] / 2 * X, shm=sh, sh=sh + SIDE * b["sw"] / 2 * X, up=_sag(theta),
                front=_sag(theta + np.pi / 2), hup=_sag(theta + head), hfront=_sag(theta + head + np.pi / 2))  # fmt: skip


def _arms(b, j, target, hint):
    j["elb"], j["wr"] = _ik(j["sh"], target, b["upper"], b["fore"], hint)


def _squats(b, s, k, q, rng):
    depth = np.minimum(s * b["rom"], 1.05)
    shank = q.uniform(20, 35) * DEG * depth  # knees travel forward over the toes
    knee = shank + (8 + q.uniform(62, 88) * depth) * DEG  # thighs end about parallel (90 deg from vertical)
    lean = (q.uniform(0, 8) + q.uniform(25, 45) * depth) * DEG  # torso leans to keep balance over the feet
    hip = b["ankle"] * Y + b["shank"] * _sag(shank) + b["thigh"] * _sag(shank - knee)
    j = _trunk(b, hip, lean, -q.uniform(0.4, 0.9) * lean)  # head stays up, eyes forward
    toe = q.uniform(5, 30) * DEG
    j["foot"], j["sole"] = np.cos(toe) * Z + np.sin(toe) * SIDE * X, Y
    feet = SIDE * (b["hw"] / 2 + q.uniform(0.03, 0.15) * b["k"]) * X + b["ankle"] * Y
    j["knee"], j["ank"] = _ik(j["hips"], feet, b["thigh"], b["shank"], j["foot"])  # knees over toes
    style, reach = q.integers(3), 0.97 * (b["upper"] + b["fore"])
    if style < 2:  # arms held forward, or raised forward while descending
        start = 88 if style == 0 else q.uniform(150, 170)  # angles are from up: 180 = hanging
        arm = _sag((start + (88 - start) * np.minimum(s, 1)) * DEG)
        _arms(b, j, j["sh"] + reach * arm - SIDE * 0.04 * b["k"] * X, -Y + 0.3 * SIDE * X)
    else:  # arms crossed on the chest
        _arms(b, j, j["sh"][::-1] + b["k"] * (0.08 * j["front"] - 0.05 * j["up"]), 0.5 * (j["front"] + SIDE * X) - j["up"])
    return j


def _lunges(b, s, k, q, rng):
    kk, step, alternate = b["k"], q.uniform(0.36, 0.48) * b["H"], q.random() < 0.6
    if alternate:  # step out (first 30% of the descent), lunge, come back; legs alternate every rep
        go = np.clip(s / 0.3, 0, 1)
        go, down, left_front = go * go * (3 - 2 * go), np.clip((s - 0.3) / 0.7, 0, 1), k % 2 == 0
    else:  # split squat: feet stay put
        go, down, left_front = np.ones_like(s), s, np.full(s.shape, rng.random() < 0.5)
    down = np.clip(down * b["rom"], 0, 1.05)
    rho = 40 * DEG * down  # back heel rises onto the toes (toe fixed on the floor)
    front = np.stack([0 * s, b["ankle"] + 0.05 * kk * np.sin(np.pi * go) * alternate, go * step], -1)
    back = np.stack([0 * s, 0.01 + kk * (0.15 * np.sin(rho) + 0.06 * np.cos(rho)),
                     kk * (0.15 * (1 - np.cos(rho)) + 0.06 * np.sin(rho))], -1)  # fmt: skip
    lf = left_front[:, None]
    w = b["hw"] / 2 + 0.02 * kk
    ankles = np.stack([np.where(lf, front, back), np.where(lf, back, front)]) + SIDE * w * X
    hz = 0.5 * (front[:, 2] + back[:, 2])
    legs = 0.985 * (b["thigh"] + b["shank"])
    top = (ankles[..., 1] + np.sqrt(legs**2 - (hz - ankles[..., 2]) ** 2 - (w - b["hw"] / 2) ** 2)).min(0)
    bottom = front[:, 1] + 0.95 * b["shank"] + 0.06 * kk  # front thigh about horizontal, back knee near floor
    hip = np.stack([0 * s, top + (bottom - top) * down, hz], -1)
    j = _trunk(b, hip, (q.uniform(0, 10) + 4 * s) * DEG, q.uniform(-5, 10) * DEG)  # torso upright
    j["knee"], j["ank"] = _ik(j["hips"], ankles, b["thigh"], b["shank"], Z + 0.1 * SIDE * X)
    bf, bs = _sag(np.pi / 2 + rho), _sag(rho)
    zf, ys = np.broadcast_to(Z, bf.shape), np.broadcast_to(Y, bs.shape)
    j["foot"] = np.stack([np.where(lf, zf, bf), np.where(lf, bf, zf)])
    j["sole"] = np.stack([np.where(lf, ys, bs), np.where(lf, bs, ys)])
    if q.random() < 0.5:  # hands on hips
        _arms(b, j, j["hips"] + kk * (0.08 * SIDE * X + 0.05 * j["up"]), SIDE * X - 0.6 * j["front"])
    else:  # arms hanging at the sides
        reach = 0.97 * (b["upper"] + b["fore"])
        _arms(b, j, j["sh"] - reach * Y + kk * (0.06 * SIDE * X + 0.03 * Z), 0.2 * SIDE * X - Z)
    return j


def _pushups(b, s, k, q, rng):
    kk, reach, legs, torso = b["k"], b["upper"] + b["fore"], b["thigh"] + b["shank"], b["torso"]
    hand_w, hand_z, sag = q.uniform(0.03, 0.18) * kk, q.uniform(-0.03, 0.1) * kk, q.uniform(-6, 8) * DEG
    wrist_y, ankle_y = 0.04 * kk, 0.15 * kk  # on the toes
    top = wrist_y + np.sqrt((0.97 * reach) ** 2 - hand_w**2 - hand_z**2)  # arms straight
    hs = top + (q.uniform(0.1, 0.22) * kk - top) * np.clip(s * b["rom"], 0, 1.05)  # shoulder height
    hs = np.append(hs, top)
    # The straight body pivots about the feet: solve the body angle beta that gives shoulder height hs.
    beta = np.arcsin(np.clip((hs - ankle_y) / (legs + torso), -1, 1))
    for _ in range(3):
        f = ankle_y + legs * np.sin(beta - sag) + torso * np.sin(beta + sag) - hs
        beta -= f / (legs * np.cos(beta - sag) + torso * np.cos(beta + sag))
    sz_top = legs * np.cos(beta[-1] - sag) + torso * np.cos(beta[-1] + sag)
    beta = beta[:-1]
    hip = ankle_y * Y + legs * _sag(np.pi / 2 - beta + sag)
    j = _trunk(b, hip, np.pi / 2 - beta - sag, q.uniform(-25, 10) * DEG)
    leg = _sag(np.pi / 2 - beta + sag)
    j["knee"] = j["hips"] - b["thigh"] * leg
    j["ank"] = j["knee"] - b["shank"] * leg
    hands = SIDE * (b["sw"] / 2 + hand_w) * X + wrist_y * Y + (sz_top + hand_z) * Z
    flare = q.uniform(15, 70) * DEG  # elbows bend back towards the feet and out to the side
    _arms(b, j, hands, -np.cos(flare) * Z + np.sin(flare) * SIDE * X)
    rot = q.uniform(-15, 35) * DEG
    j["hand"] = np.cos(rot) * Z + np.sin(rot) * SIDE * X  # palms flat, fingers forward
    pf = q.uniform(0, 25) * DEG
    j["foot"], j["sole"] = _sag(np.pi - beta + sag + pf), _sag(np.pi / 2 - beta + sag + pf)
    return j


def _bench(b, s, k, q, rng):
    kk, reach, frames = b["k"], b["upper"] + b["fore"], len(s)
    hip = np.tile((q.uniform(0.40, 0.48) + 0.09 * kk) * Y, (frames, 1))  # lying on the bench, head at -z
    j = _trunk(b, hip, (q.uniform(0, 8) - 90) * DEG, q.uniform(-10, 10) * DEG)
    foot_w, dy = b["hw"] / 2 + q.uniform(0.05, 0.25) * kk, hip[0, 1] - b["ankle"]
    foot_z = min(q.uniform(0.25, 0.4) * b["H"], np.sqrt((0.9 * (b["thigh"] + b["shank"])) ** 2 - dy**2))
    feet = SIDE * foot_w * X + b["ankle"] * Y + foot_z * Z  # feet flat on the floor, knees bent up
    j["knee"], j["ank"] = _ik(j["hips"], feet, b["thigh"], b["shank"], Y + 0.3 * SIDE * X)
    toe = q.uniform(5, 30) * DEG
    j["foot"], j["sole"] = np.cos(toe) * Z + np.sin(toe) * SIDE * X, Y
    grip = q.uniform(0.08, 0.25) * kk
    top, bottom = np.sqrt((0.96 * reach) ** 2 - grip**2), q.uniform(0.10, 0.16) * kk  # bar height over shoulders
    lift = top + (bottom - top) * np.clip(s * b["rom"], 0, 1.05)
    bar = j["shm"] + lift[:, None] * Y + (q.uniform(0.03, 0.12) * kk * s)[:, None] * Z  # bar to lower chest
    flare = q.uniform(30, 75) * DEG
    _arms(b, j, bar + SIDE * (b["sw"] / 2 + grip) * X, np.sin(flare) * SIDE * X + np.cos(flare) * Z - 0.2 * Y)
    return j


def _wall(b, s, k, q, rng):
    kk, reach, legs = b["k"], b["upper"] + b["fore"], b["thigh"] + b["shank"]
    body, lean = legs + b["torso"], q.uniform(15, 30) * DEG  # straight body pivoting about the ankles
    hand_w, hand_dy = q.uniform(0.0, 0.12) * kk, q.uniform(-0.1, 0.03) * kk
    sz = body * np.sin(lean)
    wall = sz + np.sqrt((0.96 * reach) ** 2 - hand_w**2 - hand_dy**2)  # arms straight at the top
    bottom = min(wall - q.uniform(0.3, 0.42) * kk, sz + 0.3 * reach)  # shoulders stop ~0.35 m from the wall
    sz = sz + (bottom - sz) * np.clip(s * b["rom"], 0, 1.05)
    lam = np.arcsin(sz / body)
    j = _trunk(b, b["ankle"] * Y + legs * _sag(lam), lam, q.uniform(-15, 5) * DEG)
    j["knee"] = j["hips"] - b["thigh"] * _sag(lam)
    j["ank"] = j["knee"] - b["shank"] * _sag(lam)
    j["foot"], j["sole"] = Z, Y
    hands = SIDE * (b["sw"] / 2 + hand_w) * X + (b["ankle"] + body * np.cos(lean) + hand_dy) * Y + wall * Z
    flare = q.uniform(20, 70) * DEG
    _arms(b, j, hands, np.sin(flare) * SIDE * X - np.cos(flare) * Y)
    rot = q.uniform(0, 30) * DEG
    j["hand"] = np.cos(rot) * Y + np.sin(rot) * SIDE * X  # palms on the wall, fingers up
    return j


KINEMATICS = {"BenchPress": _bench, "BodyWeightSquats": _squats, "Lunges": _lunges, "PushUps": _pushups,
              "WallPushups": _wall}  # fmt: skip


def _assemble(b, j):
    """33 scene-frame points [T, 33, 3] from joints and the head / hand / foot frames."""
    kk, frames = b["k"], len(j["shm"])
    full = lambda v: np.broadcast_to(v, (2, frames, 3))  # noqa: E731
    p = np.empty((frames, NUM_LANDMARKS, 3))
    c = j["shm"] + b["neck"] * j["hup"]
    p[:, :11] = c[:, None] + kk * (FACE[:, :1] * X + FACE[:, 1:2] * j["hup"][:, None] + FACE[:, 2:] * j["hfront"][:, None])
    wr = j["wr"]
    hand = _unit(full(j["hand"])) if "hand" in j else _unit(wr - j["elb"])
    thumb = -SIDE * X + 0.4 * j["up"]  # thumbs medial (and towards the head when that is ambiguous)
    thumb = _unit(thumb - (thumb * hand).sum(-1, keepdims=True) * hand)
    foot, sole = _unit(full(j["foot"])), full(j["sole"])
    for idx, pts in (
        (11, j["sh"]), (13, j["elb"]), (15, wr), (17, wr + kk * (0.075 * hand - 0.025 * thumb)),
        (19, wr + kk * (0.085 * hand + 0.02 * thumb)), (21, wr + kk * (0.045 * hand + 0.04 * thumb)),
        (23, j["hips"]), (25, j["knee"]), (27, j["ank"]), (29, j["ank"] - kk * (0.05 * foot + 0.06 * sole)),
        (31, j["ank"] + kk * (0.15 * foot - 0.06 * sole)),
    ):  # fmt: skip
        p[:, idx : idx + 2] = pts.transpose(1, 0, 2)
    return p


def _smooth_noise(rng, shape):
    """Unit-variance noise, partly white and partly smoothed over 5 frames (tracker jitter is both)."""
    w = rng.standard_normal((shape[0] + 4, *shape[1:]))
    smooth = (w[:-4] + w[1:-3] + w[2:-2] + w[3:-1] + w[4:]) / np.sqrt(5)
    return 0.6 * rng.standard_normal(shape) + 0.8 * smooth


def _render(b, label, p, j, rng, fps, width, height, noise, missing_rate):
    frames = len(p)
    lo, hi = SETUP[label][1]
    yaw = b["yaw_sign"] * (lo + b["yaw"] * (hi - lo)) * DEG + rng.normal(0, 4) * DEG
    elev = b["elev"] + SETUP[label][2] * DEG + rng.normal(0, 2) * DEG
    roll = b["roll"] + rng.normal(0, 1) * DEG
    f = width / (2 * np.tan(b["hfov"] / 2))
    lo_pt, hi_pt = p.min((0, 1)), p.max((0, 1))
    dist = max((hi_pt - lo_pt).max() * f / (b["fill"] * min(width, height)), 1.2) * rng.uniform(0.95, 1.05)
    back = np.array([np.sin(yaw) * np.cos(elev), np.sin(elev), np.cos(yaw) * np.cos(elev)])  # target -> camera
    cam = (lo_pt + hi_pt) / 2 + dist * back
    fz = -back
    fx = _unit(np.cross(fz, Y))
    fy = np.cross(fz, fx)
    fx, fy = np.cos(roll) * fx + np.sin(roll) * fy, np.cos(roll) * fy - np.sin(roll) * fx
    rot = np.stack([fx, fy, fz])  # rows: camera x right, y down, z forward
    pc = (p - cam) @ rot.T
    hip = pc[:, 23:25].mean(1, keepdims=True)
    shift = b["shift"] + rng.normal(0, 0.015, 2)
    img = np.empty((frames, NUM_LANDMARKS, 4))
    img[..., :2] = f * pc[..., :2] / pc[..., 2:] / [width, height] + 0.5 + shift
    img[..., 2] = (pc[..., 2] - hip[..., 2]) * f / (hip[..., 2] * width)  # MediaPipe z: x's scale, 0 at hips
    world = pc - hip
    # Visibility: landmarks on the far side of the body / back of the head, outside the frame, or in an
    # occlusion burst get low scores (MediaPipe's visibility is a logit-like confidence).
    normal = np.broadcast_to(LATERAL[:, None] * X, p.shape).copy()
    face = [0, 1, 2, 3, 4, 5, 6, 9, 10]
    normal[:, face] = _unit(j["hfront"][:, None] + 0.4 * normal[:, face])
    normal[:, 7:9] += 0.2 * j["hfront"][:, None]
    facing = (_unit(normal) * _unit(cam - p)).sum(-1)
    logit = np.where(np.arange(NUM_LANDMARKS) < 11, 2.0 + 3.5 * facing, 2.2 + 2.5 * facing)
    logit += rng.normal(0, 0.3, NUM_LANDMARKS) + rng.normal(0, 0.2, logit.shape)
    inside = np.minimum(np.minimum(img[..., 0], 1 - img[..., 0]), np.minimum(img[..., 1], 1 - img[..., 1]))
    logit -= 8 * np.clip(-inside / 0.05, 0, 1)
    occluded = np.zeros(logit.shape)
    for _ in range(rng.poisson(0.25 * frames / fps)):
        start, length = rng.integers(frames), int(rng.uniform(0.3, 1.5) * fps)
        occluded[start : start + length, LIMBS[rng.integers(len(LIMBS))]] = rng.uniform(2.5, 4.5)
    vis = 1 / (1 + np.exp(-(logit - occluded)))
    img[..., 3] = vis
    # Measurement noise: worse for unsure and occluded points; depth is the least reliable axis.
    # World points are regressed by the model, so their noise is metric (2 m per image unit ~ a typical
    # filming distance), not growing with the camera distance.
    scale = noise * (1 + 1.5 * (1 - vis) + 0.6 * occluded)
    img[..., :3] += scale[..., None] * _smooth_noise(rng, (frames, NUM_LANDMARKS, 3)) * [1, 1, 3]
    world += 2.0 * scale[..., None] * _smooth_noise(rng, world.shape) * [1, 1, 2]
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
    noise: float = 0.004, missing_rate: float = 0.03, video_id: str | None = None, group: str = "g00",
) -> ClipData:  # fmt: skip
    """One clip of ``label`` performed by ``subject`` (from :func:`sample_subject`; a new one if None).

    ``rng`` drives only what varies between a group's clips; the subject's habits for this exercise come
    from a generator seeded by (subject seed, exercise), so every clip of a group shares them."""
    _check([label])
    b = sample_subject(rng) if subject is None else subject
    q = np.random.default_rng([b["seed"], EXERCISES.index(label)])
    frames = max(2, int(round(rng.uniform(*np.broadcast_to(seconds, 2)) * fps)))
    s, k, phase = _reps(q, rng, frames, fps, SETUP[label][0] * b["tempo"])
    j = KINEMATICS[label](b, s, k, q, rng)
    p = _assemble(b, j)
    image, world = _render(b, label, p, j, rng, fps, width, height, noise, missing_rate)
    vid = video_id or f"{label}/v_{label}_{group}_c00"
    return ClipData(vid, label, group, image, world, float(fps), int(width), int(height), rep_ends=rep_ends(k, phase))


def synthesize_dataset(
    classes, groups: int = 12, clips_per_group: int = 3, seed: int = 0, fps: float = 25.0,
    seconds: tuple[float, float] = (3.0, 8.0), width: int = 320, height: int = 240,
    noise: float = 0.004, missing_rate: float = 0.03,
) -> list[ClipData]:  # fmt: skip
    """``groups`` synthetic people x ``classes`` x ``clips_per_group`` clips, deterministic in ``seed``.

    Every class's clips depend only on (seed, group, class, clip), not on which other classes are asked for."""
    classes = list(classes)
    _check(classes)
    clips = []
    for g in range(1, groups + 1):
        subject = sample_subject(np.random.default_rng([seed, g]))
        for label in classes:
            for c in range(1, clips_per_group + 1):
                rng = np.random.default_rng([seed, g, EXERCISES.index(label), c])
                clips.append(synthesize_clip(
                    label, rng, subject, fps=fps, seconds=seconds, width=width, height=height, noise=noise,
                    missing_rate=missing_rate, video_id=f"{label}/v_{label}_g{g:02d}_c{c:02d}", group=f"g{g:02d}",
                ))  # fmt: skip
    return clips
