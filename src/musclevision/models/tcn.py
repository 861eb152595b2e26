"""Temporal convolution network: dilated causal 1-D convolutions, masked mean over time.

A non-recurrent alternative behind the same ``(x [B,T,F], valid [B,T]) -> [B,H]`` interface,
so sweeps can compare architectures. Missing frames enter as zeros plus a validity channel,
and only valid steps count in the final average.
"""

from __future__ import annotations

import torch
from torch import nn


class CausalBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0)))))
        y = self.drop(torch.relu(self.conv2(nn.functional.pad(y, (self.pad, 0)))))
        return torch.relu(x + y)


class TemporalConvNet(nn.Module):
    def __init__(self, input_size: int, hidden_size: int = 64, levels: int = 3, kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        self.inp = nn.Conv1d(input_size + 1, hidden_size, 1)
        self.blocks = nn.Sequential(*(CausalBlock(hidden_size, kernel_size, 2**i, dropout) for i in range(levels)))
        self.channels = hidden_size

    @property
    def out_features(self) -> int:
        return self.channels

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weight = valid.to(x.dtype)
        h = self.blocks(self.inp(torch.cat([x, weight[..., None]], dim=-1).transpose(1, 2)))  # [B, C, T]
        total = (h * weight[:, None, :]).sum(-1)
        return total / weight.sum(-1, keepdim=True).clamp(min=1.0)
