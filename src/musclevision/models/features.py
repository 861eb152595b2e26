"""Raw BlazePose landmarks -> per-frame feature vectors, inside the model graph.

Feature computation lives in the model (not the data pipeline) so the exported ONNX graph
takes the landmarks exactly as MediaPipe returns them: the browser page, or any other
runtime, cannot drift from what training saw.

A frame is valid when it holds no NaN (MediaPipe found a person); invalid frames are zeroed
and reported in the mask, which the sequence models honour (the paper's Masking layer).
"""

from __future__ import annotations

import torch
from torch import nn

from musclevision.data.clips import NUM_LANDMARKS

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24
COORDS = ("raw", "normalized", "world")


class LandmarkFeatures(nn.Module):
    """``(landmarks [B,T,33,4], world [B,T,33,3] | None) -> (features [B,T,F], valid [B,T])``.

    coords:
      raw         x, y, z, visibility as MediaPipe gives them: the paper's 132 inputs.
      normalized  centred on the hip midpoint and divided by torso length (shoulder-hip
                  distance): invariant to where the person stands and how far from the camera.
      world       MediaPipe's metric world landmarks (hip-centred), divided by torso length.
    velocity: append frame-to-frame differences of the coordinates (zero next to a missing frame).
    """

    def __init__(self, coords: str = "raw", velocity: bool = False, visibility: bool = True):
        super().__init__()
        if coords not in COORDS:
            raise ValueError(f"features.coords={coords!r}: use one of {', '.join(COORDS)}")
        self.coords, self.velocity, self.visibility = coords, velocity, visibility

    @property
    def uses_world(self) -> bool:
        return self.coords == "world"

    @property
    def out_features(self) -> int:
        positions = NUM_LANDMARKS * 3
        return positions * (2 if self.velocity else 1) + (NUM_LANDMARKS if self.visibility else 0)

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None):
        valid = ~torch.isnan(landmarks).flatten(2).any(-1)
        if self.uses_world:
            if world is None:
                raise ValueError("features.coords=world needs the world landmarks input")
            valid = valid & ~torch.isnan(world).flatten(2).any(-1)
        keep = valid[..., None, None]
        landmarks = torch.where(keep, landmarks, torch.zeros_like(landmarks))
        xyz, vis = landmarks[..., :3], landmarks[..., 3]
        if self.coords != "raw":
            source = torch.where(keep, world, torch.zeros_like(world)) if self.uses_world else xyz
            hips = 0.5 * (source[..., LEFT_HIP, :] + source[..., RIGHT_HIP, :])
            shoulders = 0.5 * (source[..., LEFT_SHOULDER, :] + source[..., RIGHT_SHOULDER, :])
            # Torso length in the image plane (x, y): z of image landmarks is too noisy to trust.
            torso = torch.linalg.vector_norm((shoulders - hips)[..., :2], dim=-1).clamp(min=1e-3)
            xyz = (source - hips[..., None, :]) / torso[..., None, None]
        parts = [xyz.flatten(2)]
        if self.velocity:
            step = xyz[:, 1:] - xyz[:, :-1]
            both = (valid[:, 1:] & valid[:, :-1])[..., None, None]
            step = torch.where(both, step, torch.zeros_like(step))
            parts.append(torch.cat([torch.zeros_like(step[:, :1]), step], dim=1).flatten(2))
        if self.visibility:
            parts.append(vis)
        features = torch.cat(parts, dim=-1)
        return torch.where(valid[..., None], features, torch.zeros_like(features)), valid
