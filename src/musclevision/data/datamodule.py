"""``KeypointDataModule``: a keypoint source -> group-aware splits -> window or clip batches.

``prepare_data`` builds or completes the keypoint cache with the extractor pool (once, on
one process); ``setup`` loads clips, splits them by group and builds the batch sets.

Evaluation always runs on ``window``-frame windows (the live page's input) and reports
per-window and per-clip (mean window probability) metrics; a model trained on whole clips
(the paper) is additionally evaluated on whole clips by a second validation loader.

Memory: the keypoints of the loaded clips are held once (flat arrays, ~0.9 KB per frame);
windows are index pairs (clip, start) gathered per batch, so a batch holds batch_size x window
frames when training (whole clips: batch_size x the longest clip of the batch) and at most
``eval_batch_frames`` frames when evaluating, whatever the window. A window longer than every
clip is refused: it would be all padding.

``balance: group`` draws the training windows so that every class-and-group (one person or place) weighs the
same, however many windows its clips give (``clip``: every clip alike; ``null``: every window once per epoch, so
long clips weigh more). With ``train_extra_ratio: null`` the extra clips' groups count as groups too.

``train_extra`` (e.g. ``data/train_extra=synthetic``) is a second source whose clips join the
*training* side only, never validation or test: ``train_extra_ratio`` extra windows (or clips) per
real one, drawn afresh every epoch (null: all of them every epoch).
"""

from __future__ import annotations

import logging

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import BatchSampler, WeightedRandomSampler

from musclevision.data.augment import AugmentConfig
from musclevision.data.clips import ClipData
from musclevision.data.splits import split_clips
from musclevision.data.synthetic import EXERCISES
from musclevision.data.windows import (
    BucketBatchSampler,
    ClipSet,
    FrameStore,
    MixedSampler,
    WindowSet,
    batch_loader,
)

log = logging.getLogger(__name__)
SAMPLING = ("window", "clip")
BALANCE = (None, "clip", "group")


def balanced_sampler(window_clips: np.ndarray, clips: list[ClipData], balance: str) -> WeightedRandomSampler:
    """An epoch of as many windows as there are, drawn with replacement so that every clip (``clip``) or every
    class-and-group (``group``: one person or place) is drawn as often as any other, whatever its number of windows.
    ``window_clips [windows]``: each window's index into ``clips``."""
    keys = window_clips if balance == "clip" else np.array([f"{c.label}/{c.group}" for c in clips])[window_clips]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return WeightedRandomSampler(1.0 / counts[inverse], len(keys), replacement=True)  # each key's windows sum to 1


class KeypointDataModule(pl.LightningDataModule):
    def __init__(self, source, classes: list[str], split: dict | None = None, sampling: str = "window",
                 window: int = 8, fps: float = 25.0, train_stride: int = 1, eval_stride: int = 1, min_detected: int = 4,
                 batch_size: int = 32, eval_batch_size: int = 512, eval_batch_frames: int = 8192, num_workers: int = 0,
                 augment: dict | None = None, shuffle: bool = True, bucket_by_length: bool = True,
                 train_extra=None, train_extra_ratio: float | None = 1.0, balance: str | None = None,
                 require_all_classes: bool = True):  # fmt: skip
        super().__init__()
        if sampling not in SAMPLING:
            raise ValueError(f"data.sampling={sampling!r}: use one of {', '.join(SAMPLING)}")
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"data.classes={classes!r} must be a non-empty list of distinct class names")
        for name, value in (("window", window), ("train_stride", train_stride), ("eval_stride", eval_stride),
                            ("batch_size", batch_size), ("eval_batch_size", eval_batch_size),
                            ("eval_batch_frames", eval_batch_frames)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"data.{name}={value!r} must be a whole number >= 1")
        self.source, self.classes = source, list(classes)
        self.split_cfg = dict(split or {})
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
            raise ValueError(f"data.fps={fps!r} must be a frame rate in (0, 240]")
        self.sampling, self.window, self.fps = sampling, window, float(fps)
        self.require_all_classes = bool(require_all_classes)  # False: score the classes the data has (eval split=all)
        self.train_stride, self.eval_stride, self.min_detected = train_stride, eval_stride, min_detected
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.eval_batch_frames = eval_batch_frames
        self.shuffle, self.bucket_by_length = shuffle, bucket_by_length
        if train_extra_ratio is not None and (isinstance(train_extra_ratio, bool) or not train_extra_ratio > 0):
            raise ValueError(f"data.train_extra_ratio={train_extra_ratio!r} must be > 0 (extra items per real one) or null (all)")
        self.train_extra, self.train_extra_ratio = train_extra, train_extra_ratio
        for key, generated in (("data.source", source), ("data.train_extra", train_extra)):
            if getattr(generated, "kind", None) == "synthetic" and (unknown := [c for c in classes if c not in EXERCISES]):
                fix = ("experiment=best, or data/train_extra=null" if key == "data.train_extra"
                       else "data=ucf101 with a cache of your videos")  # fmt: skip
                raise ValueError(f"{key} is the synthetic generator, which makes only {', '.join(EXERCISES)}: it has no "
                                 f"{', '.join(unknown)} (data.classes); for your own classes use {fix}")  # fmt: skip
        if balance not in BALANCE:
            raise ValueError(f"data.balance={balance!r}: use null, clip or group")
        if balance and sampling != "window":
            raise ValueError(f"data.balance={balance} needs data.sampling=window (whole clips are drawn once each)")
        if balance and train_extra is not None and train_extra_ratio is not None:
            raise ValueError(f"data.balance={balance} cannot be combined with data.train_extra mixing yet: set one of them")
        self.balance = balance
        self.augment = AugmentConfig(**(augment or {}))
        if unknown := set(self.augment.swap_arms_within) - set(self.classes):
            raise ValueError(f"data.augment.swap_arms_within names {sorted(unknown)}, not among data.classes {self.classes}")
        self.clips: list[ClipData] = []
        self.split = None
        self.stores: dict[str, FrameStore] = {}
        self.train_real = 0  # real clips at the front of the training store; train_extra clips follow

    def prepare_data(self) -> None:
        longest = self.source.longest_seconds(self.classes) if hasattr(self.source, "longest_seconds") else None
        span = (self.window - 1) / self.fps  # seconds a window covers
        if longest is not None and span > longest:
            raise ValueError(
                f"data.window={self.window} covers {span:,.1f} s (slots 1/data.fps={1 / self.fps:.3g} s apart), longer than "
                f"every video to extract (the longest lasts {longest:.1f} s): each window would be mostly padding. Use a "
                "shorter data.window (nothing was extracted)"
            )
        self.source.prepare(self.classes)

    def setup(self, stage: str | None = None) -> None:
        if self.split is not None:
            return
        # (a source of one's own may not take require_all: it is passed only when it is not the default)
        self.clips = (self.source.load(self.classes) if self.require_all_classes
                      else self.source.load(self.classes, require_all=False))  # fmt: skip
        self.check_window()
        self.split = split_clips([c.label for c in self.clips], [c.group for c in self.clips], **self.split_cfg)
        log.info("split %s: %d train / %d val / %d test clips", self.split.description, len(self.split.train),
                 len(self.split.val), len(self.split.test))  # fmt: skip
        for name in ("train", "val", "test"):
            members = getattr(self.split, name)
            if members:
                self.stores[name] = FrameStore([self.clips[i] for i in members], self.classes)
        if "train" not in self.stores or ("val" not in self.stores and self.split_cfg.get("protocol") != "none"):
            raise ValueError(f"split {self.split.description} left no training or no validation clips")

    def check_window(self) -> None:
        """Refuse a window longer than every clip (all padding, and memory grows with it); warn when
        it is longer than some clips (each of those gives one NaN-padded window)."""
        if not self.clips:
            return
        # a window covers (window - 1) slot steps of clip.fps / fps frames each, plus its last frame
        spare = sorted(c.frames - (self.window - 1) * c.fps / self.fps for c in self.clips)  # frames left over
        lengths = sorted(c.frames for c in self.clips)
        longest, median = lengths[-1], lengths[len(lengths) // 2]
        if spare[-1] < 1:
            raise ValueError(
                f"data.window={self.window} is longer than every clip (the longest has {longest} frames, the median "
                f"{median}; slots are 1/data.fps={1 / self.fps:.3g} s apart): each window would be mostly padding. Use a "
                "shorter data.window, or data.sampling=clip to train on whole clips"
            )
        shorter = sum(s < 1 for s in spare)
        if shorter:  # a warning when it touches a noticeable share of the clips; a note otherwise (every command says it)
            say = log.warning if shorter >= 0.02 * len(lengths) else log.info
            say("data.window=%d is longer than %d of the %d clips (the shortest has %d frames): each of them gives one "
                "window padded with NaN frames", self.window, shorter, len(lengths), lengths[0])  # fmt: skip

    def eval_windows_per_batch(self) -> int:
        """Windows per evaluation batch: ``eval_batch_size``, fewer for long windows (``eval_batch_frames``)."""
        return max(1, min(self.eval_batch_size, self.eval_batch_frames // self.window))

    def store(self, name: str) -> FrameStore:
        """Frames of one side: ``train``, ``val``, ``test``, or ``all`` (every loaded clip)."""
        if name == "all" and "all" not in self.stores:
            self.stores["all"] = FrameStore(self.clips, self.classes)
        if name not in self.stores:
            hint = ("use split=val (what it held out) or split=all; only data.split.protocol=official has test "
                    "groups") if name == "test" else "use split=val or split=all"  # fmt: skip
            raise ValueError(f"split {self.split.description} has no {name!r} side: {hint}")
        return self.stores[name]

    def train_store(self) -> FrameStore:
        """The training side: its real clips, then the ``train_extra`` clips (loaded on first use: evaluation and
        export never pay for them)."""
        if "train+extra" not in self.stores:
            real = self.store("train").clips
            extra = self.train_extra.load(self.classes) if self.train_extra is not None else []
            clash = {c.group for c in extra} & {c.group for c in self.clips}
            if clash:
                raise ValueError(f"data.train_extra groups {sorted(clash)[:3]} are also real groups; give them another name")
            self.train_real = len(real)
            self.stores["train+extra"] = FrameStore(real + extra, self.classes) if extra else self.store("train")
            if extra:
                log.info("training on %d real + %d extra clips (%s), %s extra per real", len(real), len(extra),
                         getattr(self.train_extra, "kind", "extra"), self.train_extra_ratio or "all")  # fmt: skip
        return self.stores["train+extra"]

    def train_dataloader(self):
        store = self.train_store()
        extra = np.arange(len(store.clips)) >= self.train_real  # [clips]
        mix = extra.any() and self.train_extra_ratio is not None and self.shuffle
        if self.sampling == "clip":
            data = ClipSet(store, self.augment)
            order = MixedSampler(extra, self.train_extra_ratio) if mix else None
            if self.bucket_by_length and self.shuffle:
                batches = BucketBatchSampler(store.lengths, self.batch_size, order=order)
            else:
                batches = BatchSampler(order, self.batch_size, drop_last=False) if order is not None else None
            return batch_loader(data, self.batch_size, self.shuffle, self.num_workers, batches=batches)
        data = WindowSet(store, self.window, self.train_stride, self.min_detected, self.augment, self.fps)
        order = MixedSampler(extra[data.clip], self.train_extra_ratio) if mix else None
        if self.balance and self.shuffle:
            order = balanced_sampler(data.clip, store.clips, self.balance)
        elif self.balance:
            log.warning("data.balance=%s is ignored with data.shuffle=false (every window once, in order)", self.balance)
        batches = BatchSampler(order, self.batch_size, drop_last=False) if order is not None else None
        return batch_loader(data, self.batch_size, shuffle=self.shuffle, num_workers=self.num_workers, batches=batches)

    def eval_loaders(self, name: str, whole_clips: bool | None = None, transform=None) -> list:
        """Loader 0: every ``window``-slot window; loader 1 (clip-trained models, or on request): whole clips.
        ``transform``: a fixed change of every window (the stress suite's views and bodies)."""
        store = self.store(name)
        windows = WindowSet(store, self.window, self.eval_stride, self.min_detected, fps=self.fps, transform=transform)
        loaders = [batch_loader(windows, self.eval_windows_per_batch(), shuffle=False)]
        if whole_clips if whole_clips is not None else self.sampling == "clip":
            loaders.append(batch_loader(ClipSet(store, None), self.batch_size, shuffle=False))
        return loaders

    def val_dataloader(self):
        return self.eval_loaders("val") if "val" in self.stores else []  # protocol none: no validation

    def test_dataloader(self):
        return self.eval_loaders("test")
