"""Geometry on skeleton tensors ``[..., 33, 3]`` (torch, so it runs inside the exported model graph)."""

from __future__ import annotations

import torch

from musclevision.pose.skeleton import JOINTS, LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER

_JOINT_INDEX = [[j[k] for j in JOINTS.values()] for k in range(3)]  # 3 lists of len(JOINTS) indices


def hip_centre(points: torch.Tensor) -> torch.Tensor:
    """``[..., 33, C] -> [..., C]``: midpoint of the hips."""
    return 0.5 * (points[..., LEFT_HIP, :] + points[..., RIGHT_HIP, :])


def shoulder_centre(points: torch.Tensor) -> torch.Tensor:
    return 0.5 * (points[..., LEFT_SHOULDER, :] + points[..., RIGHT_SHOULDER, :])


def centre_and_scale(points: torch.Tensor) -> torch.Tensor:
    """Hip midpoint to the origin, torso length (shoulder-hip distance in x, y) to one."""
    hips = hip_centre(points)
    # In the image plane: z of image landmarks is too noisy to set the scale.
    torso = torch.linalg.vector_norm((shoulder_centre(points) - hips)[..., :2], dim=-1).clamp(min=1e-3)
    return (points - hips[..., None, :]) / torso[..., None, None]


def joint_cosines(points: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle at each joint of JOINTS: ``[..., 33, 3] -> [..., len(JOINTS)]``."""
    a, b, c = (points[..., index, :] for index in _JOINT_INDEX)
    u, v = a - b, c - b
    return (u * v).sum(-1) / (torch.linalg.vector_norm(u, dim=-1) * torch.linalg.vector_norm(v, dim=-1)).clamp(min=1e-6)
