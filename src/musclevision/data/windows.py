"""Batches of keypoint windows or whole clips, gathered with vectorized numpy.

Datasets here are indexed by a *list* of indices and return a whole batch (used with a
``BatchSampler`` and ``batch_size=None``): one fancy-indexing gather per batch instead of
thousands of tiny Python ``__getitem__`` calls per epoch.

Missing frames stay NaN rows all the way into the model, which masks them; padding of
short clips is NaN too, so "no person" and "no frame" are treated alike, as in the paper.

A window is sampled in *time*, as the page samples its live input (the card's window policy):
slot k of a window ending at time t holds the pose at t - (W-1-k)/fps, fps being the model's rate,
linearly interpolated between the two frames around it (``window_positions``). A clip filmed at
another rate is thus seen at the speed the model learned. A test checks this against the page's
``FrameWindow`` on the same frames.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from musclevision.data.augment import AugmentConfig, augment
from musclevision.data.clips import ClipData
from musclevision.pose.skeleton import has_person


def window_positions(timestamps_ms: np.ndarray, end_ms: float, fps: float, window: int) -> np.ndarray:
    """``[W]`` fractional frame positions of the slots of a window ending at ``end_ms``: slot k at
    ``end_ms - (window-1-k) * 1000/fps``, between the frames (``timestamps_ms``, increasing) around it,
    clamped to the first/last frame. What the page's FrameWindow does with live frames."""
    times = end_ms - (window - 1 - np.arange(window)) * 1000.0 / fps
    return np.interp(times, np.asarray(timestamps_ms, dtype=np.float64), np.arange(len(timestamps_ms), dtype=np.float64))


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
        self.fps = np.array([c.fps for c in clips], dtype=np.float64)
        self.valid = has_person(self.image)

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


@runtime_checkable
class ClipIdentities(Protocol):
    """What an evaluation dataset declares so the model can score whole clips: the clips behind the ``clip``
    index of its batches, every clip (also those without a single usable window), in index order."""

    @property
    def clip_names(self) -> list[str]: ...  # video ids

    @property
    def clip_labels(self) -> np.ndarray: ...  # [clips] class index


class _Batches(Dataset, ClipIdentities):
    """Batches of one frame store; as an evaluation dataset it declares its clips (:class:`ClipIdentities`).

    ``transform(image, world, aspect) -> (image, world)``: a fixed change of every batch (the stress suite's
    other views and bodies, ``models/stress.py``), after augmentation."""

    def __init__(self, store: FrameStore, augment_cfg: AugmentConfig | None, transform=None):
        self.store = store
        self.augment_cfg = augment_cfg if augment_cfg is not None and augment_cfg.enabled else None
        self.transform = transform
        self.label_names = np.array([c.label for c in store.clips])

    @property
    def clip_names(self) -> list[str]:
        return [c.video_id for c in self.store.clips]

    @property
    def clip_labels(self) -> np.ndarray:
        return self.store.labels

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
            image, world = augment(image, world, self.store.aspect[clip], self.augment_cfg, rng, self.label_names[clip])
        if self.transform is not None:
            image, world = self.transform(image, world, self.store.aspect[clip])
        return {
            "landmarks": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "world": torch.from_numpy(np.ascontiguousarray(world, dtype=np.float32)),
            "label": torch.from_numpy(self.store.labels[clip]),
            "clip": torch.from_numpy(clip),
        }


class WindowSet(_Batches):
    """Every ``window``-slot window (its last slot on every ``stride``-th frame) holding at least ``min_detected``
    slots with a person; slots are 1/``fps`` s apart (None: one frame apart, whatever the clip's rate)."""

    def __init__(self, store: FrameStore, window: int, stride: int = 1, min_detected: int = 1,
                 augment_cfg: AugmentConfig | None = None, fps: float | None = None, transform=None):  # fmt: skip
        super().__init__(store, augment_cfg, transform)
        self.window = window
        self.step = store.fps / fps if fps else np.ones(len(store.lengths))  # [clips] frames per slot
        clips, starts = [], []
        for index, (offset, length) in enumerate(zip(store.offsets, store.lengths, strict=True)):
            span = (window - 1) * self.step[index]
            ends = np.arange(np.ceil(span - 1e-9), length, stride) if length - 1 >= span else np.array([span])
            start = ends - span  # [N] position of each window's first slot
            positions = start[:, None] + np.arange(window) * self.step[index]  # [N, W]
            keep = start[self._slots_with_person(offset, length, positions) >= min(min_detected, window)]
            clips.append(np.full(len(keep), index))
            starts.append(keep)
        self.clip = np.concatenate(clips).astype(np.int64)
        self.start = np.concatenate(starts).astype(np.float64)

    def _slots_with_person(self, offset: int, length: int, positions: np.ndarray) -> np.ndarray:
        """Slots whose interpolated pose exists (FrameStore.gather's rule: both frames around it have a person)."""
        low = np.floor(np.clip(positions, 0, length - 1)).astype(np.int64)
        high = np.minimum(low + 1, length - 1)
        valid = self.store.valid[offset + low] & ((positions == low) | self.store.valid[offset + high])
        return (valid & (positions >= 0) & (positions <= length - 1)).sum(-1)

    def __len__(self) -> int:
        return len(self.clip)

    def __getitem__(self, indices) -> dict:
        indices = np.asarray(indices)
        rng = self._rng()
        clip, start = self.clip[indices], self.start[indices]
        step = self.step[clip] * self._stretch(len(indices), rng)  # a stretched window reads further
        span = (self.window - 1) * step
        # Slide a stretched window back so it still ends inside its clip.
        start = np.maximum(np.minimum(start, self.store.lengths[clip] - 1 - span), 0)
        positions = start[:, None] + np.arange(self.window)[None, :] * step[:, None]
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


class MixedSampler(Sampler):
    """Each epoch, every main item (``extra`` False) and ``ratio`` times as many extra items (at most all of them),
    a fresh random draw, in random order: extra data (e.g. synthetic clips) mixed in at a fixed share."""

    def __init__(self, extra: np.ndarray, ratio: float):
        self.main, self.extra = np.flatnonzero(~np.asarray(extra)), np.flatnonzero(extra)
        self.count = min(int(round(ratio * len(self.main))), len(self.extra))

    def __len__(self) -> int:
        return len(self.main) + self.count

    def __iter__(self):
        drawn = self.extra[torch.randperm(len(self.extra))[: self.count].numpy()]
        items = np.concatenate([self.main, drawn])
        yield from items[torch.randperm(len(items)).numpy()].tolist()


class BucketBatchSampler(Sampler):
    """Random batches of clips of similar length, in random order.

    A padded batch costs as many recurrent steps as its longest clip; random batches of whole
    UCF101 clips nearly always contain a ~300-frame one. Shuffling, then sorting within pools of
    ``pool`` batches before cutting them, keeps batches random but about halves the steps.
    ``order`` (e.g. a :class:`MixedSampler`) picks the clips of each epoch instead of all of them.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, pool: int = 8, order: Sampler | None = None):
        self.lengths, self.batch_size, self.pool, self.order = np.asarray(lengths), batch_size, pool, order

    def __len__(self) -> int:
        return -(-(len(self.order) if self.order is not None else len(self.lengths)) // self.batch_size)

    def __iter__(self):
        order = np.array(list(self.order)) if self.order is not None else torch.randperm(len(self.lengths)).numpy()
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
