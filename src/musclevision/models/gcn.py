"""A small spatio-temporal graph convolution network over the 33-landmark skeleton (ST-GCN++ / CTR-GCN style).

Inputs, per landmark and frame, in streams (PYSKL's joint / bone / motion), fused early (stacked as channels of one
input, as in EfficientGCN; PYSKL trains one network per stream, four times the cost):
  joint       the landmark's coordinates (by default body-centred world landmarks: the same from any side, any body)
  bone        landmark minus its parent in the kinematic tree (pose/skeleton.py PARENT)
  motion      the joint stream's change from the previous frame with a person
  visibility  MediaPipe's visibility (optional: it flips with the view, the face is not visible from behind)
Graph convolution: the skeleton's edges (MediaPipe's connections plus the tree edges that join the face to the body,
made mirror-symmetric) in ST-GCN's three partitions (same distance from the hips / towards them / away from them).
Each partition's adjacency is a parameter that starts at the skeleton (ST-GCN++); optionally (``refine_rank``) a
low-rank, per-sample correction is added (CTR-GCN's topology refinement, gated by a scalar that starts at zero).
Temporal convolution: kernel 3 at dilations 1 and 2 (ST-GCN++'s multi-scale temporal convolution, two branches); the
stem's has stride 2, so the blocks work on every other slot (half the cost, for the page and for training).

Masking: frames without a person are dropped first (valid frames gathered to the front, as the recurrent models
do), so motion is taken between consecutive frames with a person, the free slots at the end are zeroed before every
temporal convolution (exactly zero padding) and left out of every mean over time. A window with masked frames gives
what the same window without them gives; a window without anyone gives the head's bias.
"""

from __future__ import annotations

import torch
from torch import nn

from musclevision.models.features import LandmarkFeatures
from musclevision.pose.skeleton import BONES, LEFT_HIP, MIRROR, NUM_LANDMARKS, PARENT, RIGHT_HIP

STREAMS = ("joint", "bone", "motion", "visibility")


def skeleton_edges() -> list[tuple[int, int]]:
    """Undirected edges: BONES, plus each landmark to its PARENT (joins the face to the body), closed under MIRROR."""
    edges = {tuple(sorted(e)) for e in BONES} | {tuple(sorted((i, p))) for i, p in enumerate(PARENT) if i != p}
    edges |= {tuple(sorted((MIRROR[a], MIRROR[b]))) for a, b in edges}
    return sorted(edges)


def hops_from_hips(edges: list[tuple[int, int]]) -> list[int]:
    """Graph distance of every landmark from the nearer hip."""
    hops, frontier = {LEFT_HIP: 0, RIGHT_HIP: 0}, [LEFT_HIP, RIGHT_HIP]
    while frontier:
        reached = [b for a in frontier for e in edges if a in e for b in e if b not in hops]
        hops |= {b: hops[frontier[0]] + 1 for b in reached}
        frontier = sorted(set(reached))
    if len(hops) != NUM_LANDMARKS:
        raise ValueError("the skeleton graph is not connected")
    return [hops[i] for i in range(NUM_LANDMARKS)]


def skeleton_partitions() -> torch.Tensor:
    """``[3, V, V]``: ``A[k, w, v]`` weighs neighbour w's message to landmark v in partition k (ST-GCN's spatial
    configuration: w as far from the hips as v (v itself included), w nearer, w further). Columns of the sum over
    partitions add up to one (each landmark averages over itself and its neighbours)."""
    edges = skeleton_edges()
    adjacency = torch.eye(NUM_LANDMARKS)
    for a, b in edges:
        adjacency[a, b] = adjacency[b, a] = 1.0
    adjacency = adjacency / adjacency.sum(0, keepdim=True)
    hop = torch.tensor(hops_from_hips(edges))
    nearer, further = hop[:, None] < hop[None, :], hop[:, None] > hop[None, :]  # [w, v]
    return torch.stack([adjacency * ~(nearer | further), adjacency * nearer, adjacency * further])


def bone_matrix() -> torch.Tensor:
    """``[V, V]``: ``x @ M`` gives every landmark minus its PARENT (zero at the root)."""
    matrix = torch.eye(NUM_LANDMARKS)
    for child, parent in enumerate(PARENT):
        matrix[parent, child] -= 1.0
    return matrix


class SkeletonStreams(nn.Module):
    """``(landmarks [B,T,33,4], world [B,T,33,3] | None) -> (x [B,sum(channels),T,33], valid [B,T])``: the streams
    stacked on the channel axis, frames with a person gathered to the front (``valid`` is true on a prefix).

    Gathering and frame differences are products with 0/+-1 matrices over time (exact in floating point, one MatMul
    each in the exported graph, no shape arithmetic)."""

    def __init__(self, coords: str | list[str] = "canonical", streams: list[str] | tuple[str, ...] = ("joint", "bone", "motion")):
        super().__init__()
        self.streams = list(streams)
        if not self.streams or any(s not in STREAMS for s in self.streams) or len(set(self.streams)) < len(self.streams):
            raise ValueError(f"model.net.features.streams={streams!r}: use distinct names from {', '.join(STREAMS)}")
        self.coords = LandmarkFeatures(coords, visibility=False)
        width = 3 * len(self.coords.coords)
        self.channels = [1 if s == "visibility" else width for s in self.streams]
        self.register_buffer("bones", bone_matrix(), persistent=False)

    @property
    def uses_world(self) -> bool:
        return self.coords.uses_world

    @property
    def out_features(self) -> int:
        """Channels per landmark the backbone reads (the streams stacked)."""
        return sum(self.channels)

    def forward(self, landmarks: torch.Tensor, world: torch.Tensor | None = None):
        positions, landmarks, _, valid = self.coords.positions(landmarks, world)  # [B,T,V,P] (0 without a person), [B,T]
        steps = torch.arange(positions.shape[1], device=positions.device)  # [T]
        slot = torch.cumsum(valid.long(), 1) - 1  # [B,T]: where each frame with a person goes
        order = (valid[:, None, :] & (slot[:, None, :] == steps[None, :, None])).to(positions.dtype)  # [B,slot,frame]
        before = (valid[:, None, :] & (slot[:, None, :] + 1 == steps[None, :, None])).to(positions.dtype)  # previous frame
        filled = steps[None, :] < valid.long().sum(1, keepdim=True)  # [B,T]: slots that hold a frame
        follows = (filled & (steps >= 1)[None, :]).to(positions.dtype)[..., None]  # [B,T,1]: a frame in the slot before
        joint = order[:, None] @ positions.permute(0, 3, 1, 2)  # [B,1,T,T] @ [B,P,T,V] -> [B,P,T,V]
        table = {
            "joint": lambda: joint,
            "bone": lambda: joint @ self.bones,
            "motion": lambda: ((order - before) * follows)[:, None] @ positions.permute(0, 3, 1, 2),  # 0 in slot 0 and
            "visibility": lambda: order[:, None] @ landmarks[..., 3][:, None],  # after the last frame with a person
        }
        return torch.cat([table[s]() for s in self.streams], 1), filled


class GraphConv(nn.Module):
    """``x [B,C,T,V], mask [B,1,T,1] -> [B,C',T,V]``: sum over partitions k of W_k (x A_k), plus the refinement.

    The partitions sit side by side in one ``[V, V*K]`` matrix (column v*K + k: partition k's input to landmark v),
    so the exported graph has one MatMul and one Conv of kernel and stride (1, K) for it, whatever K.
    Refinement (``rank`` R > 0, CTR-GCN's idea made small): from the sample's mean over valid frames, R topologies
    ``tanh(q_w - k_v)`` ``[B,R,V,V]``, each shared by C'/R output channels, gated by a scalar that starts at 0."""

    def __init__(self, c_in: int, c_out: int, partitions: torch.Tensor, rank: int = 0):
        super().__init__()
        k = partitions.shape[0]
        self.adjacency = nn.Parameter(partitions.permute(1, 2, 0).flatten(1).clone())  # [V, V*K], starts at the skeleton
        self.mix = nn.Conv2d(c_in, c_out, (1, k), stride=(1, k))
        self.rank = rank
        if rank:
            if c_out % rank:
                raise ValueError(f"model.net.refine_rank={rank} must divide the block width {c_out}")
            self.query, self.key = nn.Conv1d(c_in, rank, 1), nn.Conv1d(c_in, rank, 1)
            self.value = nn.Conv2d(c_in, c_out, 1)
            self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.mix(torch.matmul(x, self.adjacency))  # [B,C,T,V*K] -> [B,C',T,V]
        if not self.rank:
            return y
        mean = (x * mask).sum(2) / mask.sum(2).clamp(min=1.0)  # [B,C,V] over valid frames
        topology = torch.tanh(self.query(mean).unsqueeze(-1) - self.key(mean).unsqueeze(-2))  # [B,R,V(from),V(to)]
        value = self.value(x)  # [B,C',T,V]
        refined = torch.matmul(value.unflatten(1, (self.rank, -1)), topology.unsqueeze(2))  # [B,R,C'/R,T,V]
        return y + self.gate * refined.flatten(1, 2)


class TemporalConv(nn.Module):
    """``x [B,C,T,V], mask [B,1,T,1] -> [B,C',ceil(T/stride),V]``: kernel-3 convolutions over time at each dilation
    (output channels split between them), each with its batch norm, reading zeros where there is no frame."""

    def __init__(self, c_in: int, c_out: int, dilations: list[int] | tuple[int, ...] = (1, 2), stride: int = 1,
                 kernel_size: int = 3):  # fmt: skip
        super().__init__()
        widths = [c_out // len(dilations) + (i < c_out % len(dilations)) for i in range(len(dilations))]
        self.branches = nn.ModuleList()
        for width, d in zip(widths, dilations, strict=True):
            pad = (kernel_size - 1) * d // 2
            conv = nn.Conv2d(c_in, width, (kernel_size, 1), padding=(pad, 0), dilation=(d, 1), stride=(stride, 1))
            self.branches.append(nn.Sequential(conv, nn.BatchNorm2d(width)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask
        return torch.cat([branch(x) for branch in self.branches], 1)


class GraphBlock(nn.Module):
    """``x [B,C,T,V], mask [B,1,T,1] -> [B,C',T,V]``: graph conv, BN, ReLU, temporal conv, plus the residual, ReLU."""

    def __init__(self, c_in: int, c_out: int, partitions: torch.Tensor, rank: int, dilations, dropout: float):
        super().__init__()
        self.graph = GraphConv(c_in, c_out, partitions, rank)
        self.norm = nn.BatchNorm2d(c_out)
        self.drop = nn.Dropout(dropout)
        self.temporal = TemporalConv(c_out, c_out, dilations)
        self.residual = nn.Identity() if c_in == c_out else nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.norm(self.graph(x, mask))))
        return torch.relu(self.temporal(y, mask) + self.residual(x))


class Stem(nn.Module):
    """``x [B,C,T,V], mask [B,1,T,1] -> ([B,C',T',V], [B,1,T',1])``: the streams normalized per channel (ST-GCN's input
    batch norm) and fused by one graph conv, then a temporal conv of stride ``stride`` (T' = ceil(T/stride): fewer slots
    for every block after it). With stride 2 the slots kept are 0, 2, 4, ...: one is valid exactly when its centre slot
    was (valid slots are a prefix), so the mask that follows is ``mask[:, :, ::2]``."""

    def __init__(self, c_in: int, c_out: int, partitions: torch.Tensor, dilations, stride: int):
        super().__init__()
        self.data_norm = nn.BatchNorm2d(c_in)
        self.graph = GraphConv(c_in, c_out, partitions)
        self.norm = nn.BatchNorm2d(c_out)
        self.temporal = TemporalConv(c_out, c_out, dilations, stride)
        self.stride = stride

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.norm(self.graph(self.data_norm(x), mask)))
        return torch.relu(self.temporal(x, mask)), mask[:, :, :: self.stride]


class SkeletonGCN(nn.Module):
    """``(x [B,C_in,T,V], valid [B,T]) -> [B,H]``: the stem, ``blocks`` graph blocks of ``hidden_size`` channels, the
    mean over landmarks and valid slots."""

    def __init__(self, in_channels: int, hidden_size: int = 32, blocks: int = 3, stem_channels: int = 24,
                 stem_stride: int = 2, refine_rank: int = 0, dilations: list[int] | tuple[int, ...] = (1, 2),
                 dropout: float = 0.1):  # fmt: skip
        super().__init__()
        if hidden_size < 1 or blocks < 1 or stem_channels < 1 or refine_rank < 0 or not dilations:
            raise ValueError(f"graph model: hidden_size={hidden_size}, blocks={blocks}, stem_channels={stem_channels} must "
                             f"be >= 1, refine_rank={refine_rank} >= 0, dilations={dilations} not empty")  # fmt: skip
        if stem_stride not in (1, 2):
            raise ValueError(f"model.net.stem_stride={stem_stride}: use 1 or 2")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.net.dropout={dropout} must be in [0, 1)")
        self.register_buffer("partitions", skeleton_partitions(), persistent=False)
        self.stem = Stem(in_channels, stem_channels, self.partitions, dilations, stem_stride)
        widths = [stem_channels] + [hidden_size] * blocks
        self.blocks = nn.ModuleList(
            GraphBlock(a, b, self.partitions, refine_rank, dilations, dropout) for a, b in zip(widths[:-1], widths[1:])
        )
        self.drop = nn.Dropout(dropout)
        self.width = widths[-1]

    @property
    def out_features(self) -> int:
        return self.width

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x, mask = self.stem(x, valid.to(x.dtype)[:, None, :, None])  # [B,C,T',V], [B,1,T',1]
        for block in self.blocks:
            x = block(x, mask)  # [B,C,T',V]
        weight = mask[:, :, :, 0]  # [B,1,T']
        pooled = (x.mean(-1) * weight).sum(-1) / weight.sum(-1).clamp(min=1.0)  # [B,C]
        return self.drop(pooled)
