"""The plain ``nn.Module``: landmarks -> features -> sequence backbone -> class logits."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from musclevision.models.features import LandmarkFeatures
from musclevision.models.gcn import SkeletonGCN, SkeletonStreams
from musclevision.models.rnn import MaskedRNN
from musclevision.models.tcn import TemporalConvNet
from musclevision.pose.skeleton import MIRROR

# model.net.arch -> (feature step, backbone, fixed backbone options): every architecture a config can name, read by
# build_classifier and by training's check of option kinds. A new one is a module with ``__init__(in_features,
# **options)``, ``out_features`` and ``forward(x [B,T,F], valid [B,T]) -> [B,out_features]`` that takes any number of
# frames (the page gives 1 to many), one line here and a configs/model/<name>.yaml (README, "Adding an architecture").
ARCHITECTURES = {
    "lstm": (LandmarkFeatures, MaskedRNN, {"cell": "lstm"}),
    "gru": (LandmarkFeatures, MaskedRNN, {"cell": "gru"}),
    "tcn": (LandmarkFeatures, TemporalConvNet, {}),
    "gcn": (SkeletonStreams, SkeletonGCN, {}),
}
ARCHS = tuple(ARCHITECTURES)


def mirrored(landmarks: torch.Tensor, world: torch.Tensor | None):
    """The left/right mirror image of a pose sequence (x flipped, left and right landmarks swapped)."""
    index = torch.tensor(MIRROR, device=landmarks.device)
    flip = torch.tensor([-1.0, 1.0, 1.0, 1.0], device=landmarks.device)
    shift = torch.tensor([1.0, 0.0, 0.0, 0.0], device=landmarks.device)
    landmarks = landmarks.index_select(2, index) * flip + shift
    if world is not None:
        world = world.index_select(2, index) * flip[:3]
    return landmarks, world


class SequenceClassifier(nn.Module):
    """``mirror_tta``: at evaluation, average the class probabilities of the input and its mirror
    image. Exercises are left/right symmetric, so this removes a side bias for the price of one
    more pass (it is part of the exported graph too)."""

    def __init__(self, features: LandmarkFeatures, backbone: nn.Module, num_classes: int, mirror_tta: bool = False):
        super().__init__()
        self.features, self.backbone, self.mirror_tta = features, backbone, mirror_tta
        self.head = nn.Linear(backbone.out_features, num_classes)
        nn.init.xavier_uniform_(self.head.weight)  # Keras Dense default
        nn.init.zeros_(self.head.bias)

    @property
    def uses_world(self) -> bool:
        """Whether the network reads the world landmarks (else only the image landmarks)."""
        return self.features.uses_world

    def probabilities(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(self(landmarks, world), dim=-1)

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        """``landmarks [B,T,33,4]`` (NaN rows = no person), optional ``world [B,T,33,3]`` -> logits ``[B,C]``."""
        logits = self._logits(landmarks, world)
        if self.training or not self.mirror_tta:
            return logits
        both = torch.stack([torch.softmax(logits, -1), torch.softmax(self._logits(*mirrored(landmarks, world)), -1)])
        return torch.log(both.mean(0))  # log-probabilities: softmax of them gives the averaged probabilities

    def _logits(self, landmarks: torch.Tensor, world: torch.Tensor | None) -> torch.Tensor:
        x, valid = self.features(landmarks, world)
        return self.head(self.backbone(x, valid))


class Ensemble(nn.Module):
    """Several classifiers of the same classes as one: ``probabilities`` is the mean of the members' probabilities;
    ``forward`` returns its log, so a softmax of the output (what evaluation applies) gives that mean."""

    def __init__(self, nets: list[SequenceClassifier]):
        super().__init__()
        if len(nets) < 2:
            raise ValueError(f"an ensemble needs at least two networks, got {len(nets)}")
        self.nets = nn.ModuleList(nets)

    @property
    def uses_world(self) -> bool:
        return any(net.uses_world for net in self.nets)

    def probabilities(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        members = [net.probabilities(landmarks, world if net.uses_world else None) for net in self.nets]  # M x [B,C]
        return torch.stack(members).mean(0)

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        return torch.log(self.probabilities(landmarks, world))


def build_classifier(num_classes: int, arch: str = "lstm", features: dict | None = None, mirror_tta: bool = False,
                     **backbone) -> SequenceClassifier:  # fmt: skip
    """Build from plain config values, e.g. ``build_classifier(4, "lstm", {"coords": "raw"}, hidden_size=64)``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.net.arch={arch!r}: use one of {', '.join(ARCHS)}")
    feature_step, backbone_class, fixed = ARCHITECTURES[arch]
    taken = inspect.signature(feature_step.__init__).parameters
    if unknown := sorted(set(features or {}) - set(taken)):
        raise ValueError(f"model.net.features.{unknown[0]}: the features of model.net.arch={arch} are "
                         f"{', '.join(p for p in taken if p != 'self')}")  # fmt: skip
    feats = feature_step(**(features or {}))
    return SequenceClassifier(feats, backbone_class(feats.out_features, **fixed, **backbone), num_classes, mirror_tta)
