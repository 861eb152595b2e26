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

from musclevision.pose.geometry import (
    SCENE_POINTS,
    SIDE_PAIRS,
    asymmetry,
    canonical_world,
    centre_and_scale,
    hide_unseen,
    joint_cosines,
    orientation,
    scene_motion,
)
from musclevision.pose.skeleton import JOINTS, NUM_LANDMARKS

COORDS = ("raw", "normalized", "world", "canonical")


class LandmarkFeatures(nn.Module):
    """``(landmarks [B,T,33,4], world [B,T,33,3] | None) -> (features [B,T,F], valid [B,T])``.

    coords (one name, a list, or names joined by "+", concatenated):
      raw         x, y, z as MediaPipe gives them (with visibility: the paper's 132 inputs).
      normalized  image landmarks centred on the hip midpoint and divided by torso length:
                  invariant to where the person stands and how far from the camera.
      world       MediaPipe's metric world landmarks (hip-centred, camera-aligned), torso-scaled.
      canonical   world landmarks in a body-centred frame: turned about the vertical axis so the hips and
                  shoulders face one way, divided by body size (the same from any side, for any body).
    velocity: append frame-to-frame differences of the coordinates (zero next to a missing frame).
    visibility: append MediaPipe's per-landmark visibility.
    angles: append joint-angle cosines (elbows, shoulders, hips, knees, ankles) from the world
      landmarks ("world", viewpoint-independent) or the normalized image landmarks ("image").
    asymmetry: append how far apart the feet, knees and wrists are front-to-back and across, and how differently
      each left/right joint is bent (``pose.geometry.asymmetry``, body-centred world landmarks): a stance
      (side by side or one foot ahead) named directly, the same from any side and mirrored.
    hide_unseen: > 0: a leg whose mean visibility over the window is below this is treated as not seen (collapsed
      to the hip midpoint, ``pose.geometry.hide_unseen``) before any coordinates are computed: MediaPipe's guess of a
      leg out of the frame or behind a bench is not evidence. 0: off.
    scene_motion: append where the shoulders, hips, wrists and ankles are in the image relative to their mean over the
      window, in image torso lengths (``pose.geometry.scene_motion``): what stays still in the scene and what moves
      (hands on the floor under a moving body in a push-up; a still body under moving hands in a bench press), which
      hip-centred coordinates cannot tell.
    orientation: append how the trunk lies against the camera's up/down (``pose.geometry.orientation``): upright or
      lying, and facing the floor (a push-up) or up (a bench press), from the world landmarks.
    """

    ASYMMETRY = 2 * len(SIDE_PAIRS) + len(JOINTS) // 2  # features of pose.geometry.asymmetry
    SCENE = 2 * len(SCENE_POINTS)  # features of pose.geometry.scene_motion

    def __init__(self, coords: str | list[str] = "raw", velocity: bool = False, visibility: bool = True,
                 angles: str | None = None, asymmetry: bool = False, hide_unseen: float = 0.0,
                 scene_motion: bool = False, orientation: bool = False):  # fmt: skip
        super().__init__()
        self.coords = coords.split("+") if isinstance(coords, str) else list(coords)  # "normalized+world" == [normalized, world]
        if not self.coords or any(c not in COORDS for c in self.coords):
            raise ValueError(f"features.coords={coords!r}: use one or more of {', '.join(COORDS)}")
        if angles not in (None, "image", "world"):
            raise ValueError(f"features.angles={angles!r}: use null, image or world")
        self.velocity, self.visibility, self.angles = velocity, visibility, angles
        self.asymmetry = bool(asymmetry)
        if isinstance(hide_unseen, bool) or not isinstance(hide_unseen, (int, float)) or not 0 <= hide_unseen <= 1:
            raise ValueError(f"features.hide_unseen={hide_unseen!r}: a visibility from 0 (off) to 1")
        self.hide_unseen = float(hide_unseen)
        if not isinstance(scene_motion, bool):
            raise ValueError(f"features.scene_motion={scene_motion!r}: true or false")
        self.scene_motion = scene_motion
        if not isinstance(orientation, bool):
            raise ValueError(f"features.orientation={orientation!r}: true or false")
        self.orientation = orientation

    @property
    def uses_world(self) -> bool:
        return ("world" in self.coords or "canonical" in self.coords or self.angles == "world" or self.asymmetry
                or self.orientation)  # fmt: skip

    @property
    def out_features(self) -> int:
        positions = len(self.coords) * NUM_LANDMARKS * 3
        return (positions * (2 if self.velocity else 1) + (NUM_LANDMARKS if self.visibility else 0)
                + (len(JOINTS) if self.angles else 0) + (self.ASYMMETRY if self.asymmetry else 0)
                + (self.SCENE if self.scene_motion else 0) + (2 if self.orientation else 0))  # fmt: skip

    def positions(self, landmarks: torch.Tensor, world: torch.Tensor | None = None):
        """``-> (positions [B,T,33,3*len(coords)], landmarks [B,T,33,4], world [B,T,33,3] | None, valid [B,T])``:
        the chosen coordinates per landmark, and the inputs, all zeroed on frames without a person."""
        valid = ~torch.isnan(landmarks).flatten(2).any(-1)
        if self.uses_world:
            if world is None:
                raise ValueError("these features need the world landmarks input")
            valid = valid & ~torch.isnan(world).flatten(2).any(-1)
            world = torch.where(valid[..., None, None], world, torch.zeros_like(world))
        landmarks = torch.where(valid[..., None, None], landmarks, torch.zeros_like(landmarks))
        if self.hide_unseen > 0:
            landmarks, world = hide_unseen(landmarks, world, valid, self.hide_unseen)
        image = landmarks[..., :3]
        table = {
            "raw": lambda: image,
            "normalized": lambda: centre_and_scale(image),
            "world": lambda: centre_and_scale(world),
            "canonical": lambda: canonical_world(world, valid),
        }
        return torch.cat([table[c]() for c in self.coords], dim=-1), landmarks, world, valid

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None):
        positions, landmarks, world, valid = self.positions(landmarks, world)
        parts = [positions.flatten(2)]
        if self.velocity:
            step = positions[:, 1:] - positions[:, :-1]
            both = (valid[:, 1:] & valid[:, :-1])[..., None, None]
            step = torch.where(both, step, torch.zeros_like(step))
            parts.append(torch.cat([torch.zeros_like(positions[:, :1]), step], dim=1).flatten(2))
        if self.visibility:
            parts.append(landmarks[..., 3])
        if self.angles:
            parts.append(joint_cosines(world if self.angles == "world" else centre_and_scale(landmarks[..., :3])))
        if self.asymmetry:
            if "canonical" in self.coords:  # already among the positions: its 3 columns, not computed again
                at = 3 * self.coords.index("canonical")
                parts.append(asymmetry(positions[..., at : at + 3]))
            else:
                parts.append(asymmetry(canonical_world(world, valid)))
        if self.scene_motion:
            parts.append(scene_motion(landmarks[..., :2], valid))
        if self.orientation:
            parts.append(orientation(world))
        features = torch.cat(parts, dim=-1)
        return torch.where(valid[..., None], features, torch.zeros_like(features)), valid
