"""Keep the person who exercises when several are in view: follow each over time, keep the one who moves.

Causal (every decision uses the frames so far only) and frame-rate independent (averages run
over time, not frames), so the live page applies exactly the same rule frame by frame:
``web/static/js/exerciser.js`` is the same code, checked against this one on the same recorded
detections (``tests/test_exerciser.py``). Plain floats and loops on both sides, in the same order,
so both compute the same numbers.

Per frame, given the people MediaPipe found (image landmarks in the original frame):

1. **Follow**: each person is matched to a track by the mean distance of their 12 body joints
   (shoulders, elbows, wrists, hips, knees, ankles) to the track's last pose, in torso lengths;
   greedy, closest pair first, only below ``gate``. If the kept track found no one, the nearest
   person left over within ``relink`` torso lengths continues it (rule v2: on a lying lifter,
   BlazePose's fit jumps by more than ``gate`` from frame to frame; v1 started a new track each
   time and dropped frames until the kept one was forgotten). Other unmatched people start new
   tracks, except (rule v3) one within ``gate`` of a person already followed in this frame: MediaPipe fitted
   that body twice, and a second track on it would compete with the first on its fit's jitter. A track unseen
   for ``max_gap_s`` is forgotten.
2. **Score**: how fast the upper body moves, in torso lengths per second, averaged over time.
   Each track smooths its shoulders, elbows and wrists over ``fast_s`` (MediaPipe's frame-to-frame
   jitter, which grows with the frame rate, mostly cancels; real motion does not: 0.5 s, measured on
   recorded detections, where 0.1 s let a jumping fit or a gesturing instructor outscore the exerciser) and keeps an
   exponentially weighted mean, time constant ``tau_s``, of their mean speed. Whoever presses,
   squats, lunges or pushes moves shoulders and arms all the time; an instructor or spotter standing
   by moves now and then. (Measured on recorded detections of WallPushups g11 and g19 and BenchPress
   spotter clips: the upper body beat all 12 joints, and speed beat positional spread, which an
   instructor shifting his weight once inflates for seconds.)
3. **Keep**: the kept track stays kept while it is alive unless another person in this frame
   moves ``switch_ratio`` times faster. While the kept track is alive but not found in this frame,
   no one is returned (a missing frame is better than the bystander's pose). With no kept track,
   the fastest person in the frame is kept (the larger one on a tie, e.g. the first frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from musclevision.pose.skeleton import LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER, landmark

# The rule's parameters. They key the keypoint cache (PoseSettings.cache_key) and travel to the
# page in the model card's pose_model block: the one definition both sides use.
SELECTOR = {"rule": "upper-body-speed-v3", "tau_s": 1.0, "fast_s": 0.5, "gate": 1.0, "relink": 3.0, "max_gap_s": 1.0,
            "switch_ratio": 1.5}  # fmt: skip
# Cards exported before a rule keep theirs: v1 has no relink, v2 follows duplicate fits as people of their own.
RULES = ("upper-body-speed-v1", "upper-body-speed-v2", "upper-body-speed-v3")
_SIDES = ("left", "right")
BODY_JOINTS = tuple(
    landmark(f"{side}_{joint}") for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle") for side in _SIDES
)
# shoulders, elbows, wrists: positions in BODY_JOINTS
UPPER = tuple(BODY_JOINTS.index(landmark(f"{side}_{joint}")) for joint in ("shoulder", "elbow", "wrist") for side in _SIDES)
SHOULDERS, HIPS = (LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_HIP, RIGHT_HIP)


def exerciser_dict() -> dict:
    """What the page's copy of the rule (exerciser.js) reads from the generated module, JSON-ready."""
    return {"body_joints": list(BODY_JOINTS), "upper": list(UPPER), "shoulders": list(SHOULDERS), "hips": list(HIPS),
            "rules": list(RULES)}  # fmt: skip


@dataclass(eq=False)  # identity, not field equality
class Track:
    id: int
    pose: list  # [(x, y)] of BODY_JOINTS in pixels, last seen
    size: float  # torso length in pixels, last seen
    last_seen_ms: float
    smooth: list  # [[x, y]] of the UPPER joints, smoothed over fast_s
    speed: float = 0.0  # torso lengths per second, averaged over tau_s
    seen: bool = False  # found in the current frame


def body_pose(landmarks, width: int, height: int) -> tuple[list, float]:
    """Body joints of one person in pixels, and their torso length (mid-shoulder to mid-hip, >= 1 px)."""
    pose = [(float(landmarks[j][0]) * width, float(landmarks[j][1]) * height) for j in BODY_JOINTS]
    sx = (float(landmarks[SHOULDERS[0]][0]) + float(landmarks[SHOULDERS[1]][0])) / 2 * width
    sy = (float(landmarks[SHOULDERS[0]][1]) + float(landmarks[SHOULDERS[1]][1])) / 2 * height
    hx = (float(landmarks[HIPS[0]][0]) + float(landmarks[HIPS[1]][0])) / 2 * width
    hy = (float(landmarks[HIPS[0]][1]) + float(landmarks[HIPS[1]][1])) / 2 * height
    return pose, max(math.sqrt((sx - hx) * (sx - hx) + (sy - hy) * (sy - hy)), 1.0)


def pose_distance(a: list, b: list, size: float) -> float:
    total = 0.0
    for (ax, ay), (bx, by) in zip(a, b):
        total += math.sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by))
    return total / len(a) / size


def distinct_people(people, width: int, height: int, gate: float = SELECTOR["gate"]) -> int:
    """How many of ``people`` (landmark lists ``[33][>= 2]``, normalized) are different people: a fit within
    ``gate`` torso lengths of one counted before is the same body found twice (MediaPipe's fits can
    converge on one person: measured on Lunges g13, one man holding a log, found as two)."""
    counted: list = []
    for person in people:
        pose, size = body_pose(person, width, height)
        if all(pose_distance(pose, other, max(size, other_size)) >= gate for other, other_size in counted):
            counted.append((pose, size))
    return len(counted)


class ExerciserSelector:
    """``update(people, timestamp_ms)`` -> index of the exerciser among ``people`` (or None), frame by frame."""

    def __init__(self, width: int, height: int, params: dict | None = None):
        self.p = {**SELECTOR, **(params or {})}
        if self.p["rule"] not in RULES:
            raise ValueError(f"selector rule {self.p['rule']!r} is unknown; known: {', '.join(RULES)}")
        self.version = RULES.index(self.p["rule"]) + 1  # v2: relink, v3: duplicate fits ignored
        self.width, self.height = width, height
        self.tracks: list[Track] = []
        self.kept: Track | None = None
        self.next_id = 0
        # What happened, for the manifest.
        self.people_max = 0
        self.kept_frames: dict[int, int] = {}
        self.switches = 0

    def update(self, people, timestamp_ms: float) -> int | None:
        """``people``: each a landmark list ``[33][>= 2]`` (x, y normalized). Timestamps must increase."""
        p, timestamp_ms = self.p, float(timestamp_ms)
        self.people_max = max(self.people_max, len(people))
        poses = [body_pose(person, self.width, self.height) for person in people]

        # 1. follow: closest (pose, track) pairs first
        pairs = []
        for i, (pose, size) in enumerate(poses):
            for k, track in enumerate(self.tracks):
                d = pose_distance(pose, track.pose, max(size, track.size))
                if d < p["gate"]:
                    pairs.append((d, i, k))
        pairs.sort()
        owner: list[Track | None] = [None] * len(poses)
        taken = [False] * len(self.tracks)
        for _, i, k in pairs:
            if owner[i] is None and not taken[k]:
                owner[i], taken[k] = self.tracks[k], True
        relink = p.get("relink", 0.0) if self.version >= 2 else 0.0
        if self.kept is not None and self.kept not in owner and relink > 0:
            near = None
            for i, (pose, size) in enumerate(poses):
                if owner[i] is not None:
                    continue
                d = pose_distance(pose, self.kept.pose, max(size, self.kept.size))
                if d < relink and (near is None or d < near[0]):
                    near = (d, i)
            if near is not None:
                owner[near[1]] = self.kept
        duplicate = _duplicate_fits(poses, owner, p["gate"]) if self.version >= 3 else [False] * len(poses)
        for track in self.tracks:
            track.seen = False
        for i, (pose, size) in enumerate(poses):
            track = owner[i]
            if duplicate[i]:
                continue
            if track is None:
                track = Track(self.next_id, pose, size, timestamp_ms, [[pose[j][0], pose[j][1]] for j in UPPER])
                self.next_id += 1
                self.tracks.append(track)
                owner[i] = track
            else:
                # 2. score: speed of the smoothed upper body, averaged over time
                dt_ms = timestamp_ms - track.last_seen_ms
                a, fast = _alpha(dt_ms, p["tau_s"]), _alpha(dt_ms, p["fast_s"])
                total = 0.0
                for n, j in enumerate(UPPER):
                    smooth = track.smooth[n]
                    dx, dy = fast * (pose[j][0] - smooth[0]), fast * (pose[j][1] - smooth[1])
                    smooth[0] += dx
                    smooth[1] += dy
                    total += math.sqrt(dx * dx + dy * dy)
                speed = total / len(UPPER) / size / (dt_ms / 1000.0) if dt_ms > 0 else 0.0
                track.speed += a * (speed - track.speed)
                track.pose, track.size, track.last_seen_ms = pose, size, timestamp_ms
            track.seen = True
        self.tracks = [t for t in self.tracks if timestamp_ms - t.last_seen_ms <= p["max_gap_s"] * 1000.0]
        if self.kept is not None and self.kept not in self.tracks:
            self.kept = None

        # 3. keep
        best = None
        for i, track in enumerate(owner):
            if track is None:  # a duplicate fit
                continue
            if track is not self.kept and (best is None or _faster(track, poses[i][1], owner[best], poses[best][1])):
                best = i
        choice = None
        if self.kept is None:
            choice = best
        elif best is not None and owner[best].speed > p["switch_ratio"] * self.kept.speed:
            choice = best
        elif self.kept.seen:
            choice = owner.index(self.kept)
        if choice is not None:
            if self.kept is not None and owner[choice] is not self.kept:
                self.switches += 1
            self.kept = owner[choice]
            self.kept_frames[self.kept.id] = self.kept_frames.get(self.kept.id, 0) + 1
        return choice

    def summary(self) -> dict:
        """For the manifest: most people in one frame, people followed, frames kept per person, switches."""
        return {"people_max": self.people_max, "people_tracked": self.next_id, "kept_frames": dict(self.kept_frames),
                "switches": self.switches}  # fmt: skip


def _duplicate_fits(poses: list, owner: list, gate: float) -> list[bool]:
    """Per person: a leftover (no track) within ``gate`` torso lengths of a person followed in this frame, or of an
    earlier leftover that is not itself a duplicate: the same body fitted twice (rule v3)."""
    duplicate = [False] * len(poses)
    for i, (pose, size) in enumerate(poses):
        if owner[i] is None:
            duplicate[i] = any(
                j != i
                and (owner[j] is not None or (j < i and not duplicate[j]))
                and pose_distance(pose, other, max(size, other_size)) < gate
                for j, (other, other_size) in enumerate(poses)
            )
    return duplicate


def _alpha(dt_ms: float, tau_s: float) -> float:
    """Weight of a new sample after ``dt_ms`` in an exponential average with time constant ``tau_s``
    (dt / (tau + dt): no exp(), so Python and JS compute the very same number)."""
    dt = dt_ms / 1000.0
    return dt / (tau_s + dt) if dt > 0 else 0.0


def _faster(a: Track, size_a: float, b: Track, size_b: float) -> bool:
    return a.speed > b.speed or (a.speed == b.speed and size_a > size_b)
