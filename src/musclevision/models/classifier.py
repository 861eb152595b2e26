"""The plain ``nn.Module``: landmarks -> features -> sequence backbone -> class logits."""

from __future__ import annotations

import torch
from torch import nn

from musclevision.models.features import LandmarkFeatures
from musclevision.models.rnn import MaskedRNN
from musclevision.models.tcn import TemporalConvNet

ARCHS = ("lstm", "gru", "tcn")


class SequenceClassifier(nn.Module):
    def __init__(self, features: LandmarkFeatures, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.features, self.backbone = features, backbone
        self.head = nn.Linear(backbone.out_features, num_classes)
        nn.init.xavier_uniform_(self.head.weight)  # Keras Dense default
        nn.init.zeros_(self.head.bias)

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None) -> torch.Tensor:
        """``landmarks [B,T,33,4]`` (NaN rows = no person), optional ``world [B,T,33,3]`` -> logits ``[B,C]``."""
        x, valid = self.features(landmarks, world)
        return self.head(self.backbone(x, valid))


def build_classifier(num_classes: int, arch: str = "lstm", features: dict | None = None, **backbone) -> SequenceClassifier:
    """Build from plain config values, e.g. ``build_classifier(4, "lstm", {"coords": "raw"}, hidden_size=64)``."""
    feats = LandmarkFeatures(**(features or {}))
    if arch in ("lstm", "gru"):
        net = MaskedRNN(feats.out_features, cell=arch, **backbone)
    elif arch == "tcn":
        net = TemporalConvNet(feats.out_features, **backbone)
    else:
        raise ValueError(f"model.net.arch={arch!r}: use one of {', '.join(ARCHS)}")
    return SequenceClassifier(feats, net, num_classes)
