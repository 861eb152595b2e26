"""The plain ``nn.Module``: landmarks -> features -> sequence backbone -> class logits."""

from __future__ import annotations

import torch
from torch import nn

from musclevision.models.features import LandmarkFeatures
from musclevision.models.rnn import MaskedRNN
from musclevision.models.tcn import TemporalConvNet
from musclevision.pose.skeleton import MIRROR

ARCHS = ("lstm", "gru", "tcn")


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


def build_classifier(num_classes: int, arch: str = "lstm", features: dict | None = None, mirror_tta: bool = False,
                     **backbone) -> SequenceClassifier:  # fmt: skip
    """Build from plain config values, e.g. ``build_classifier(4, "lstm", {"coords": "raw"}, hidden_size=64)``."""
    feats = LandmarkFeatures(**(features or {}))
    if arch in ("lstm", "gru"):
        net = MaskedRNN(feats.out_features, cell=arch, **backbone)
    elif arch == "tcn":
        net = TemporalConvNet(feats.out_features, **backbone)
    else:
        raise ValueError(f"model.net.arch={arch!r}: use one of {', '.join(ARCHS)}")
    return SequenceClassifier(feats, net, num_classes, mirror_tta)
