"""Stacked LSTM/GRU with Keras masking and Keras recurrent dropout, exportable to ONNX.

Keras semantics the paper relies on:
- Masking: a masked step leaves state and output unchanged. So a stack of masked layers
  gives exactly what the same stack gives on the sequence with masked steps *removed*.
  We use that: valid frames are gathered to the front ("compaction", plain gather ops),
  the recurrence runs on the compacted sequence, and the output is read at the last valid
  step. No pack_padded_sequence, so the exported graph is plain tensors + an ONNX LSTM/GRU.
- LSTM has one bias per gate (Keras), so 64->64 on 132 inputs + dense to 4 classes is
  exactly 83,716 parameters. Forget-gate bias starts at 1 (unit_forget_bias), input
  kernels Glorot-uniform, recurrent kernels orthogonal.
- recurrent_dropout (tf.keras 2.x, implementation 1): one dropout mask per gate on the
  previous hidden state, drawn once per sequence and reused at every step. The fused
  kernels cannot do that, so training with it runs an explicit step loop; evaluation and
  export always use the fused kernel (identical maths without dropout).
"""

from __future__ import annotations

import torch
from torch import nn

GATES = {"lstm": 4, "gru": 3}


def compact(x: torch.Tensor, valid: torch.Tensor):
    """Move each sequence's valid steps to the front, in order. Returns (x', lengths)."""
    steps = x.shape[1]
    seen = torch.cumsum(valid.long(), dim=1)  # valid frames up to and including t
    target = torch.arange(steps, device=x.device)
    # Output slot j takes the frame where the running count first exceeds j.
    index = (seen[:, None, :] <= target[None, :, None]).long().sum(-1).clamp(max=steps - 1)
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1])), valid.long().sum(1)


def last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Output at each sequence's last valid step; zeros (the initial state) when it has none."""
    index = (lengths - 1).clamp(min=0)[:, None, None].expand(-1, 1, outputs.shape[-1])
    last = torch.gather(outputs, 1, index)[:, 0]
    return torch.where((lengths > 0)[:, None], last, torch.zeros_like(last))


class MaskedRNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 2, cell: str = "lstm",
                 recurrent_dropout: float = 0.0, dropout: float = 0.0):  # fmt: skip
        super().__init__()
        if cell not in GATES:
            raise ValueError(f"cell={cell!r}: use one of {', '.join(GATES)}")
        if not 0.0 <= recurrent_dropout < 1.0 or not 0.0 <= dropout < 1.0:
            raise ValueError("dropout and recurrent_dropout must be in [0, 1)")
        self.cell, self.recurrent_dropout = cell, recurrent_dropout
        if hidden_size < 1 or num_layers < 1:
            raise ValueError(f"hidden_size={hidden_size} and num_layers={num_layers} must be >= 1")
        self.hidden_sizes = [hidden_size] * num_layers
        self.dropout = nn.Dropout(dropout)
        gates = GATES[cell]
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = (nn.ParameterList() for _ in range(4))
        size = input_size
        for hidden in self.hidden_sizes:
            self.w_ih.append(nn.Parameter(torch.empty(gates * hidden, size)))
            self.w_hh.append(nn.Parameter(torch.empty(gates * hidden, hidden)))
            self.b_ih.append(nn.Parameter(torch.zeros(gates * hidden)))
            if cell == "gru":  # GRU keeps a recurrent bias inside the reset gate (Keras reset_after)
                self.b_hh.append(nn.Parameter(torch.zeros(gates * hidden)))
            size = hidden
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return self.hidden_sizes[-1]

    def reset_parameters(self) -> None:
        for layer, hidden in enumerate(self.hidden_sizes):
            nn.init.xavier_uniform_(self.w_ih[layer])
            nn.init.orthogonal_(self.w_hh[layer])
            nn.init.zeros_(self.b_ih[layer])
            if self.cell == "lstm":
                with torch.no_grad():
                    self.b_ih[layer][hidden : 2 * hidden] = 1.0  # forget gate (gate order i, f, g, o)
            else:
                nn.init.zeros_(self.b_hh[layer])

    def _recurrent_bias(self, layer: int) -> torch.Tensor:
        return self.b_hh[layer] if self.cell == "gru" else torch.zeros_like(self.b_ih[layer])

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``x [B,T,F]``, ``valid [B,T]`` -> final hidden state ``[B,H]`` of the last layer."""
        x, lengths = compact(x, valid)
        for layer, hidden in enumerate(self.hidden_sizes):
            if layer:
                x = self.dropout(x)
            if self.training and self.recurrent_dropout > 0:
                x = self._loop(x, layer, hidden)
            else:
                x = self._fused(x, layer, hidden)
        return last_valid(x, lengths)

    def _fused(self, x: torch.Tensor, layer: int, hidden: int) -> torch.Tensor:
        weights = [self.w_ih[layer], self.w_hh[layer], self.b_ih[layer], self._recurrent_bias(layer)]
        h0 = x.new_zeros(1, x.shape[0], hidden)
        if self.cell == "lstm":
            out, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)
        else:
            out, _ = torch.gru(x, h0, weights, True, 1, 0.0, False, False, True)
        return out

    def _loop(self, x: torch.Tensor, layer: int, hidden: int) -> torch.Tensor:
        batch, steps, gates = x.shape[0], x.shape[1], GATES[self.cell]
        keep = 1.0 - self.recurrent_dropout
        # One mask per gate and sequence, fixed over time (Keras/Gal & Ghahramani variational dropout).
        masks = torch.bernoulli(x.new_full((gates, batch, hidden), keep)) / keep
        w_hh = self.w_hh[layer].view(gates, hidden, hidden).transpose(1, 2)  # [G, H, H]: h @ W_g^T
        x_proj = (x @ self.w_ih[layer].T + self.b_ih[layer]).view(batch, steps, gates, hidden).permute(1, 2, 0, 3)
        if self.cell == "lstm":
            order = [0, 1, 3, 2]  # i, f, o, g: the three sigmoid gates side by side
            return LSTMRecurrence.apply(x_proj[:, order], w_hh[order], masks).transpose(0, 1)
        b_hh = self.b_hh[layer].view(gates, 1, hidden)
        h = x.new_zeros(batch, hidden)
        outputs = []
        for t in range(steps):  # GRU (reset_after): gates r, z, n
            rec = torch.bmm(masks * h, w_hh) + b_hh
            r, z = torch.sigmoid(x_proj[t, 0] + rec[0]), torch.sigmoid(x_proj[t, 1] + rec[1])
            n = torch.tanh(x_proj[t, 2] + r * rec[2])
            h = (1 - z) * n + z * h
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class LSTMRecurrence(torch.autograd.Function):
    """The LSTM time loop with per-gate dropout masks on h, with a hand-written backward pass.

    Autograd through a Python step loop records ~15 tiny ops per step; doing the backward by
    hand (and the recurrent weight gradient as one batched matmul over all steps) makes the
    paper's recurrent-dropout training ~3x faster on CPU. Gate order here: i, f, o, g.
    Shapes: x_proj [T, 4, B, H] (input projections + bias), w_hh [4, H, H], masks [4, B, H].
    """

    @staticmethod
    def forward(ctx, x_proj, w_hh, masks):
        steps, _, batch, hidden = x_proj.shape
        hs = x_proj.new_zeros(steps + 1, batch, hidden)
        cs = x_proj.new_zeros(steps + 1, batch, hidden)
        acts = x_proj.new_empty(steps, 4, batch, hidden)  # gate activations, kept for backward
        for t in range(steps):
            a = torch.baddbmm(x_proj[t], masks * hs[t], w_hh)
            torch.sigmoid(a[:3], out=acts[t, :3])
            torch.tanh(a[3], out=acts[t, 3])
            i, f, o, g = acts[t]
            cs[t + 1] = torch.addcmul(f * cs[t], i, g)
            hs[t + 1] = o * torch.tanh(cs[t + 1])
        ctx.save_for_backward(w_hh, masks, hs, cs, acts)
        return hs[1:]

    @staticmethod
    def backward(ctx, grad_out):
        w_hh, masks, hs, cs, acts = ctx.saved_tensors
        grad_pre = torch.empty_like(acts)  # dL/d(pre-activation) per step and gate
        w_t = w_hh.transpose(1, 2)
        dh = torch.zeros_like(grad_out[0])
        dc = torch.zeros_like(dh)
        for t in range(grad_out.shape[0] - 1, -1, -1):
            i, f, o, g = acts[t]
            dh = dh + grad_out[t]
            tanh_c = torch.tanh(cs[t + 1])
            dc = dc + dh * o * (1 - tanh_c * tanh_c)
            torch.mul(dc * g, i * (1 - i), out=grad_pre[t, 0])
            torch.mul(dc * cs[t], f * (1 - f), out=grad_pre[t, 1])
            torch.mul(dh * tanh_c, o * (1 - o), out=grad_pre[t, 2])
            torch.mul(dc * i, 1 - g * g, out=grad_pre[t, 3])
            dc = dc * f
            dh = (torch.bmm(grad_pre[t], w_t) * masks).sum(0)
        hidden = hs.shape[-1]
        dropped_h = (masks[None] * hs[:-1, None]).permute(1, 3, 0, 2).reshape(4, hidden, -1)  # [4, H, T*B]
        grad_w = torch.bmm(dropped_h, grad_pre.permute(1, 0, 2, 3).reshape(4, -1, hidden))
        return grad_pre, grad_w, None
