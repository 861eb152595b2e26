"""Batches of keypoint windows or whole clips, gathered with vectorized numpy.

Datasets here are indexed by a *list* of indices and return a whole batch (used with a
``BatchSampler`` and ``batch_size=None``): one fancy-indexing gather per batch instead of
thousands of tiny Python ``__getitem__`` calls per epoch.

Missing frames stay NaN rows all the way into the model, which masks them; padding of
short clips is NaN too, so "no person" and "no frame" are treated alike, as in the paper.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from musclevision.data.augment import AugmentConfig, augment
from musclevision.data.clips import ClipData


class FrameStore:
    """The frames of many clips concatenated into flat arrays, with per-clip offsets.

    The clips' own arrays become views into these, so the keypoints are held once, not twice."""

    def __init__(self, clips: list[ClipData], classes: list[str]):
        self.clips = clips
        self.lengths = np.array([c.frames for c in clips], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.image = np.concatenate([c.image for c in clips], dtype=np.float32)
        self.world = np.concatenate([c.world for c in clips], dtype=np.float32)
        for c, start, length in zip(clips, self.offsets, self.lengths):
            c.image, c.world = self.image[start : start + length], self.world[start : start + length]
        self.labels = np.array([classes.index(c.label) for c in clips], dtype=np.int64)
        self.aspect = np.array([c.width / c.height for c in clips], dtype=np.float32)
        self.valid = ~np.isnan(self.image[:, 0, 0])

    def gather(self, clip: np.ndarray, positions: np.ndarray):
        """Frames at fractional ``positions [B, W]`` of each ``clip [B]``, linearly interpolated.

        Positions outside a clip give NaN rows (padding); interpolating next to a missing frame
        gives NaN as well, so a lost frame never turns into a fake pose.
        """
        length = self.lengths[clip][:, None]
        inside = (positions >= 0) & (positions <= length - 1)
        pos = np.clip(positions, 0, length - 1)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, length - 1)
        frac = (pos - low)[..., None, None].astype(np.float32)
        base = self.offsets[clip][:, None]
        between = bool((frac > 0).any())  # False for unstretched windows: whole frames, nothing to mix
        out = []
        for array in (self.image, self.world):
            mixed = array[base + low]  # [B, W, 33, C]
            if between:
                mixed = np.where(frac > 0, mixed * (1 - frac) + array[base + high] * frac, mixed)
            mixed[~inside] = np.nan
            out.append(mixed)
        return out


class _Batches(Dataset):
    def __init__(self, store: FrameStore, augment_cfg: AugmentConfig | None):
        self.store = store
        self.augment_cfg = augment_cfg if augment_cfg is not None and augment_cfg.enabled else None

    def _rng(self) -> np.random.Generator:
        # Drawn from torch's generator: seeded by seed_everything, distinct per DataLoader worker.
        return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))

    def _stretch(self, batch: int, rng) -> np.ndarray:
        if self.augment_cfg is None:
            return np.ones(batch)
        return rng.uniform(*self.augment_cfg.time_stretch, batch)

    def _batch(self, clip: np.ndarray, positions: np.ndarray, rng) -> dict:
        image, world = self.store.gather(clip, positions)
        if self.augment_cfg is not None:
            image, world = augment(image, world, self.store.aspect[clip], self.augment_cfg, rng)
        return {
            "landmarks": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "world": torch.from_numpy(np.ascontiguousarray(world, dtype=np.float32)),
            "label": torch.from_numpy(self.store.labels[clip]),
            "clip": torch.from_numpy(clip),
        }


class WindowSet(_Batches):
    """Every ``window``-frame window (step ``stride``) holding at least ``min_detected`` frames with a person."""

    def __init__(self, store: FrameStore, window: int, stride: int = 1, min_detected: int = 1,
                 augment_cfg: AugmentConfig | None = None):  # fmt: skip
        super().__init__(store, augment_cfg)
        self.window = window
        clips, starts = [], []
        seen = np.concatenate([[0], np.cumsum(store.valid)])  # valid frames before each global index
        for index, (offset, length) in enumerate(zip(store.offsets, store.lengths, strict=True)):
            start = np.arange(0, max(length - window, 0) + 1, stride)
            end = np.minimum(start + window, length)
            detected = seen[offset + end] - seen[offset + start]
            keep = start[detected >= min(min_detected, window)]
            clips.append(np.full(len(keep), index))
            starts.append(keep)
        self.clip = np.concatenate(clips).astype(np.int64)
        self.start = np.concatenate(starts).astype(np.float64)

    def __len__(self) -> int:
        return len(self.clip)

    def __getitem__(self, indices) -> dict:
        indices = np.asarray(indices)
        rng = self._rng()
        clip, start = self.clip[indices], self.start[indices]
        rate = self._stretch(len(indices), rng)
        span = (self.window - 1) * rate
        # A stretched window reads further: slide it back so it still ends inside its clip.
        start = np.maximum(np.minimum(start, self.store.lengths[clip] - 1 - span), 0)
        positions = start[:, None] + np.arange(self.window)[None, :] * rate[:, None]
        return self._batch(clip, positions, rng)


class ClipSet(_Batches):
    """Whole clips, NaN-padded to the longest in the batch (the paper's training input)."""

    def __len__(self) -> int:
        return len(self.store.clips)

    def __getitem__(self, indices) -> dict:
        clip = np.asarray(indices, dtype=np.int64)
        rng = self._rng()
        rate = self._stretch(len(clip), rng)
        frames = np.floor((self.store.lengths[clip] - 1) / rate).astype(np.int64) + 1
        positions = np.arange(frames.max())[None, :] * rate[:, None]
        positions[np.arange(frames.max())[None, :] >= frames[:, None]] = -1  # beyond the end: padding
        return self._batch(clip, positions, rng)


class BucketBatchSampler(Sampler):
    """Random batches of clips of similar length, in random order.

    A padded batch costs as many recurrent steps as its longest clip; random batches of whole
    UCF101 clips nearly always contain a ~300-frame one. Shuffling, then sorting within pools of
    ``pool`` batches before cutting them, keeps batches random but about halves the steps.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, pool: int = 8):
        self.lengths, self.batch_size, self.pool = np.asarray(lengths), batch_size, pool

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths)).numpy()
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        for index in torch.randperm(len(batches)).tolist():
            yield batches[index]


def batch_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0,
                 batches: Sampler | None = None) -> DataLoader:  # fmt: skip
    """Batches of indices (``batches``, or plain random/sequential ones) into a batch-indexed dataset."""
    sampler = batches or BatchSampler((RandomSampler if shuffle else SequentialSampler)(dataset), batch_size, drop_last=False)
    return DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers, persistent_workers=num_workers > 0,
    )  # fmt: skip
