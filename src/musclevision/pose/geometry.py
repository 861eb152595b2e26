"""Geometry on skeleton tensors ``[..., 33, 3]`` (torch, so it runs inside the exported model graph), and the joint
angle in degrees on numpy arrays for analysis (tests, benchmarks)."""

from __future__ import annotations

import numpy as np
import torch

from musclevision.pose.skeleton import (
    BODY_PARTS,
    JOINTS,
    LEFT_HIP,
    LEFT_SHOULDER,
    NUM_LANDMARKS,
    PARENT,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    SEGMENTS,
    landmark,
)

_JOINT_INDEX = [[j[k] for j in JOINTS.values()] for k in range(3)]  # 3 lists of len(JOINTS) indices
_LIMB_ENDS = [*SEGMENTS["thighs"], *SEGMENTS["shins"], *SEGMENTS["upper arms"]]
_LIMB_STARTS = [PARENT[i] for i in _LIMB_ENDS]


def hip_centre(points: torch.Tensor) -> torch.Tensor:
    """``[..., 33, C] -> [..., C]``: midpoint of the hips (also numpy)."""
    return 0.5 * (points[..., LEFT_HIP, :] + points[..., RIGHT_HIP, :])


def shoulder_centre(points: torch.Tensor) -> torch.Tensor:
    return 0.5 * (points[..., LEFT_SHOULDER, :] + points[..., RIGHT_SHOULDER, :])


def right_to_left(points: torch.Tensor) -> torch.Tensor:
    """``[..., 33, C] -> [..., C]``: the body's right-to-left line, hips and shoulders together (also numpy)."""
    return points[..., LEFT_HIP, :] - points[..., RIGHT_HIP, :] + points[..., LEFT_SHOULDER, :] - points[..., RIGHT_SHOULDER, :]


def centre_and_scale(points: torch.Tensor) -> torch.Tensor:
    """Hip midpoint to the origin, torso length (shoulder-hip distance in x, y) to one."""
    hips = hip_centre(points)
    # In the image plane: z of image landmarks is too noisy to set the scale.
    torso = torch.linalg.vector_norm((shoulder_centre(points) - hips)[..., :2], dim=-1).clamp(min=1e-3)
    return (points - hips[..., None, :]) / torso[..., None, None]


LEGS = (BODY_PARTS["left leg"], BODY_PARTS["right leg"])


def hide_unseen(landmarks: torch.Tensor, world: torch.Tensor | None, valid: torch.Tensor, threshold: float,
                parts=LEGS):  # fmt: skip
    """A part (default: each leg) whose mean visibility over the window's valid frames is below ``threshold`` is
    treated as not seen: its image landmarks move to the hip midpoint with visibility 0, its world landmarks to the
    origin (the hip midpoint), as training's ``part_dropout`` loses a part. MediaPipe still places a leg that is out of
    the frame or behind a bench (a guess, often bent), and a guessed leg is no evidence of the exercise.
    ``landmarks [B,T,33,4]``, ``world [B,T,33,3] | None`` (zero on invalid frames), ``valid [B,T]`` -> the same."""
    weight = valid.to(landmarks.dtype)[..., None]  # [B, T, 1]
    seen = (landmarks[..., 3] * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # [B, 33] mean visibility
    masks = torch.tensor([[i in part for i in range(NUM_LANDMARKS)] for part in parts], device=landmarks.device)  # [P, 33]
    part_seen = torch.stack([seen[:, list(part)].mean(-1) for part in parts], dim=-1)  # [B, P]
    hidden = ((part_seen < threshold)[:, :, None] & masks[None]).any(1)  # [B, 33]
    hidden = hidden[:, None, :, None]  # [B, 1, 33, 1]
    hips = hip_centre(landmarks[..., :3])[..., None, :]  # [B, T, 1, 3]
    image = torch.where(hidden, hips.expand_as(landmarks[..., :3]), landmarks[..., :3])
    visibility = torch.where(hidden[..., 0], torch.zeros_like(landmarks[..., 3]), landmarks[..., 3])
    landmarks = torch.cat([image, visibility[..., None]], dim=-1)
    if world is not None:
        world = torch.where(hidden, torch.zeros_like(world), world)
    return landmarks, world


# Body points whose travel in the image tells what is anchored in the scene: hands on the floor and a moving body
# (push-ups), a still body and moving hands (bench press), still feet and a moving trunk (squats).
SCENE_POINTS = (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_wrist", "right_wrist"),
                ("left_ankle", "right_ankle"))  # fmt: skip
_SCENE_INDEX = [[landmark(a) for a, _ in SCENE_POINTS], [landmark(b) for _, b in SCENE_POINTS]]


def scene_motion(image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Where the midpoints of SCENE_POINTS are in the image relative to their own mean over the window, in image torso
    lengths: ``image [B,T,33,>=2]`` (x, y; zero on invalid frames), ``valid [B,T]`` -> ``[B,T,2*len(SCENE_POINTS)]``,
    per point |dx| then dy (y down). Not hip-centred, unlike every other feature: this is the motion a still camera
    sees in the scene. |dx|: the same mirrored or filmed from the other side. Zero on invalid frames."""
    weight = valid.to(image.dtype)[..., None]  # [B, T, 1]
    count = weight.sum(1).clamp(min=1.0)  # [B, 1]
    points = 0.5 * (image[..., _SCENE_INDEX[0], :2] + image[..., _SCENE_INDEX[1], :2])  # [B, T, P, 2]
    mean = (points * weight[..., None]).sum(1, keepdim=True) / count[:, None, :, None]  # [B, 1, P, 2]
    torso = torch.linalg.vector_norm((shoulder_centre(image) - hip_centre(image))[..., :2], dim=-1)  # [B, T]
    torso = ((torso * weight[..., 0]).sum(1) / count[:, 0]).clamp(min=1e-3)  # [B]
    offset = (points - mean) / torso[:, None, None, None]  # [B, T, P, 2]
    motion = torch.stack([offset[..., 0].abs(), offset[..., 1]], dim=-1).flatten(2)  # [B, T, 2P]
    return motion * weight


def joint_cosines(points: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle at each joint of JOINTS: ``[..., 33, 3] -> [..., len(JOINTS)]``."""
    a, b, c = (points[..., index, :] for index in _JOINT_INDEX)
    u, v = a - b, c - b
    return (u * v).sum(-1) / (torch.linalg.vector_norm(u, dim=-1) * torch.linalg.vector_norm(v, dim=-1)).clamp(min=1e-6)


# Left/right landmark pairs whose placement tells a stance: feet side by side (a squat) or one ahead of the other (a
# lunge); hands together or apart.
SIDE_PAIRS = ("ankle", "knee", "wrist")
_PAIR_INDEX = [[landmark(f"{side}_{name}") for name in SIDE_PAIRS] for side in ("left", "right")]
_LEFT_JOINTS = list(range(0, len(JOINTS), 2))  # JOINTS comes in (left, right) pairs
_RIGHT_JOINTS = [i + 1 for i in _LEFT_JOINTS]


def asymmetry(canonical: torch.Tensor) -> torch.Tensor:
    """How differently the two sides are placed and bent: ``canonical [..., 33, 3]`` (``canonical_world``: x from the
    body's right to its left, z front to back, body-size units) -> ``[..., 2 * len(SIDE_PAIRS) + len(JOINTS) // 2]``:
    per pair of SIDE_PAIRS the distance between left and right along the body's front-back axis (|dz|) and across it
    (|dx|), then per left/right joint of JOINTS the difference of their angle cosines, |cos l - cos r|. Absolute
    values: the same for a mirrored body (left lunge or right lunge) and from any side."""
    left, right = canonical[..., _PAIR_INDEX[0], :], canonical[..., _PAIR_INDEX[1], :]
    apart = (left - right).abs()  # [..., pairs, 3]
    cosines = joint_cosines(canonical)
    bent = (cosines[..., _LEFT_JOINTS] - cosines[..., _RIGHT_JOINTS]).abs()
    return torch.cat([apart[..., 2], apart[..., 0], bent], dim=-1)


def orientation(world: torch.Tensor) -> torch.Tensor:
    """How the trunk lies against the camera's up/down (gravity, for a level camera): ``world [..., 33, 3]`` (y down)
    -> ``[..., 2]``: the y of the unit torso line (hips to shoulders: -1 upright, 0 lying) and the y of the unit chest
    normal (right-to-left line x torso line: + facing the floor, as in a push-up; - facing up, as on a bench). Both
    are the same turned about the vertical axis, mirrored (left and right swapped with x flipped) or scaled."""
    torso = shoulder_centre(world) - hip_centre(world)  # [..., 3]
    normal = torch.linalg.cross(right_to_left(world), torso, dim=-1)
    unit = lambda v: v[..., 1] / torch.linalg.vector_norm(v, dim=-1).clamp(min=1e-6)  # noqa: E731
    return torch.stack([unit(torso), unit(normal)], dim=-1)


def body_size(world: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``world [B,T,33,3]``, ``valid [B,T]`` -> ``[B]``: mean 3-D length of the torso, thighs, shins and upper arms
    over the valid frames (metres; 1 when there are none). Lengths do not change with the view."""
    torso = torch.linalg.vector_norm(shoulder_centre(world) - hip_centre(world), dim=-1)  # [B, T]
    limbs = torch.linalg.vector_norm(world[..., _LIMB_ENDS, :] - world[..., _LIMB_STARTS, :], dim=-1).mean(-1)  # [B, T]
    weight = valid.to(world.dtype)
    total = ((torso + limbs) * 0.5 * weight).sum(1)
    count = weight.sum(1)
    return torch.where(count > 0, total / count.clamp(min=1.0), torch.ones_like(total)).clamp(min=1e-3)


def canonical_world(world: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Body-centred world landmarks ``[B,T,33,3]``: hip midpoint at the origin, turned about the vertical axis so
    that the person's right-to-left (hips and shoulders, averaged over the window's valid frames) points along +x,
    and divided by the body's size. The same movement filmed from any side along the floor, by a taller or
    shorter person, gives the same values (up to MediaPipe's own errors). Up/down stays the camera's."""
    world = world - hip_centre(world)[..., None, :]
    across = (right_to_left(world) * valid[..., None].to(world.dtype)).sum(1)  # [B, 3]
    norm = torch.sqrt(across[:, 0] ** 2 + across[:, 2] ** 2).clamp(min=1e-6)
    cos, sin = (across[:, 0] / norm)[:, None, None], (across[:, 2] / norm)[:, None, None]  # [B, 1, 1]
    x, y, z = world.unbind(-1)
    turned = torch.stack([cos * x + sin * z, y, cos * z - sin * x], dim=-1)  # rotate `across` onto +x
    return turned / body_size(world, valid)[:, None, None, None]


def joint_angle(points: np.ndarray, joint: str) -> np.ndarray:
    """Angle (degrees) at the middle landmark of ``JOINTS[joint]`` (e.g. "left_knee"): points [..., 33, 3] -> [...]."""
    a, b, c = (points[..., i, :] for i in JOINTS[joint])
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def lying(world: np.ndarray) -> np.ndarray:
    """Frames of world landmarks ``[T, 33, 3]`` whose torso (mid-hip to mid-shoulder) is nearer horizontal than vertical
    in the camera's axes (y is down the image): a bench-press lifter, not a spotter. False where no person."""
    torso = (world[:, LEFT_SHOULDER] + world[:, RIGHT_SHOULDER]) / 2 - (world[:, LEFT_HIP] + world[:, RIGHT_HIP]) / 2
    with np.errstate(invalid="ignore"):
        return np.abs(torso[:, 1]) < np.cos(np.pi / 4) * np.linalg.norm(torso, axis=1)
