"""Data stage: group-aware splits, window/clip batches, augmentation, the DataModule on real keypoints."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import torch

from musclevision.data import KeypointDataModule
from musclevision.data.augment import AugmentConfig, augment
from musclevision.data.clips import ClipData
from musclevision.data.sources import SyntheticSource, VideoCacheSource
from musclevision.data.splits import split_clips, split_key
from musclevision.data.windows import BucketBatchSampler, ClipSet, FrameStore, MixedSampler, WindowSet
from musclevision.pose.skeleton import LANDMARK_NAMES, MIRROR

CLASSES = ["BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups"]


def ucf_like(groups=range(8, 26), per_group=3):
    labels, group_names = [], []
    for label in CLASSES:
        for g in groups:
            for _ in range(per_group):
                labels.append(label)
                group_names.append(f"g{g:02d}")
    return labels, group_names


def sides(split, groups):
    return {name: {groups[i] for i in getattr(split, name)} for name in ("train", "val", "test")}


@pytest.mark.parametrize("fold", range(6))
def test_group_folds_never_put_a_group_on_two_sides(fold):
    labels, groups = ucf_like()
    split = split_clips(labels, groups, "group_kfold", folds=6, fold=fold)
    seen = sides(split, groups)
    assert not seen["train"] & seen["val"]
    assert len(seen["val"]) == 3 and not split.test
    assert sorted(split.train + split.val) == list(range(len(labels)))


def test_group_folds_cover_every_group_once():
    labels, groups = ucf_like()
    val_groups = [sides(split_clips(labels, groups, folds=6, fold=k), groups)["val"] for k in range(6)]
    assert sorted(g for fold in val_groups for g in fold) == sorted(set(groups))


def test_split_key_holds_exactly_what_decides_the_sides():
    """Recorded splits with equal keys give the same sides (two seeds of one group fold may form an ensemble);
    splits with different keys give different sides (the random clip split's seed counts)."""
    import itertools

    labels, groups = ucf_like()
    configs = [{"protocol": p, "folds": f, "fold": k, "official_split": o, "val_fraction": v, "seed": s}
               for p, f, k, o, v, s in itertools.product(["group_kfold", "official", "leaky_random_clips", "none"],
                                                         [3, 6], [0, 1], [2, 3], [0.2, 0.3], [0, 7])]  # fmt: skip
    outcome = {}
    for config in configs:
        split = split_clips(labels, groups, **config)
        outcome.setdefault(json.dumps(split_key(config), sort_keys=True), set()).add(
            (tuple(split.train), tuple(split.val), tuple(split.test))
        )
    assert all(len(sides) == 1 for sides in outcome.values())  # one key: one way of splitting
    assert len({next(iter(sides)) for sides in outcome.values()}) == len(outcome)  # another key: another way
    assert split_key({"protocol": "group_kfold", "folds": 6, "fold": 2, "seed": 42}) == split_key(
        {"protocol": "group_kfold", "folds": 6, "fold": 2, "seed": 7}
    )
    assert split_key({"protocol": "group_kfold", "folds": 6, "fold": 0}) == split_key({})  # left out: the defaults


def test_official_split_uses_its_test_groups_and_folds_inside_the_rest():
    labels, groups = ucf_like()
    split = split_clips(labels, groups, "official", folds=5, fold=1, official_split=2)
    seen = sides(split, groups)
    assert seen["test"] == {f"g{g:02d}" for g in range(8, 15)}
    assert not (seen["train"] & seen["val"]) and not (seen["test"] & (seen["train"] | seen["val"]))


def test_official_split_refuses_when_its_test_groups_are_withheld():
    labels, groups = ucf_like()  # groups 01-07 are not in the shared data
    with pytest.raises(ValueError, match="g01"):
        split_clips(labels, groups, "official", official_split=1)


def test_leaky_split_is_loud_and_really_leaks(caplog):
    labels, groups = ucf_like()
    with caplog.at_level(logging.WARNING):
        split = split_clips(labels, groups, "leaky_random_clips", val_fraction=0.2, seed=3)
    assert "LEAKY" in caplog.text
    seen = sides(split, groups)
    assert seen["train"] & seen["val"]  # the very flaw this protocol exists to reproduce


def test_bad_split_options_name_the_option():
    labels, groups = ucf_like()
    with pytest.raises(ValueError, match="protocol"):
        split_clips(labels, groups, "random")
    with pytest.raises(ValueError, match="fold"):
        split_clips(labels, groups, folds=6, fold=6)


def clip(label, group, frames=20, missing=(), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((frames, 33, 4)).astype(np.float32)
    image[:, :, 0] = np.arange(frames)[:, None] / 100.0  # x encodes the frame index
    world = rng.random((frames, 33, 3)).astype(np.float32)
    image[list(missing)] = np.nan
    world[list(missing)] = np.nan
    return ClipData(f"{label}/{group}", label, group, image, world, 25.0, 320, 240)


def test_windows_skip_stretches_without_a_person_and_keep_nan_rows():
    store = FrameStore([clip("Lunges", "g08", 20, missing=range(5, 12))], ["Lunges"])
    windows = WindowSet(store, window=8, stride=1, min_detected=4)
    starts = windows.start.astype(int).tolist()
    assert all(np.sum(~np.isin(np.arange(s, s + 8), range(5, 12))) >= 4 for s in starts)
    assert 3 not in starts and 0 in starts
    batch = windows[list(range(len(windows)))]
    assert batch["landmarks"].shape == (len(windows), 8, 33, 4)
    nan_rows = np.isnan(batch["landmarks"].numpy()[:, :, 0, 0])
    expected = np.isin(np.asarray(starts)[:, None] + np.arange(8), range(5, 12))
    assert np.array_equal(nan_rows, expected)


def test_time_stretch_reads_faster_or_slower_but_stays_in_its_clip():
    store = FrameStore([clip("Lunges", "g08", 30), clip("PushUps", "g09", 12)], ["Lunges", "PushUps"])
    windows = WindowSet(store, 8, 1, 1, AugmentConfig(time_stretch=(1.5, 1.5)))
    batch = windows[list(range(len(windows)))]
    x = batch["landmarks"].numpy()[..., 0, 0]
    assert not np.isnan(x).any()
    steps = np.diff(x, axis=1) * 100  # x encodes the frame index
    assert np.allclose(steps, 1.5, atol=1e-4)


def test_clip_batches_pad_with_nan_to_the_longest():
    store = FrameStore([clip("Lunges", "g08", 9), clip("PushUps", "g09", 14)], ["Lunges", "PushUps"])
    batch = ClipSet(store, None)[[0, 1]]
    assert batch["landmarks"].shape == (2, 14, 33, 4)
    padded = batch["landmarks"].numpy()
    assert np.isnan(padded[0, 9:]).all() and not np.isnan(padded[0, :9]).any()
    assert batch["label"].tolist() == [0, 1]


def test_mirror_swaps_left_and_right_landmarks():
    assert LANDMARK_NAMES[MIRROR[LANDMARK_NAMES.index("left_wrist")]] == "right_wrist"
    assert LANDMARK_NAMES[MIRROR[LANDMARK_NAMES.index("mouth_left")]] == "mouth_right"
    # the documented BlazePose pairs, all of them
    pairs = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(i, i + 1) for i in range(11, 33, 2)]
    assert all(MIRROR[a] == b and MIRROR[b] == a for a, b in pairs)
    assert MIRROR[0] == 0 and sorted(MIRROR) == list(range(33))
    rng = np.random.default_rng(0)
    image = rng.random((2, 3, 33, 4)).astype(np.float32)
    world = rng.random((2, 3, 33, 3)).astype(np.float32)
    flipped, flipped_world = augment(image, world, np.full(2, 4 / 3), AugmentConfig(mirror=1.0), rng)
    left, right = LANDMARK_NAMES.index("left_wrist"), LANDMARK_NAMES.index("right_wrist")
    assert np.allclose(flipped[..., left, 0], 1.0 - image[..., right, 0])
    assert np.allclose(flipped[..., left, 1:], image[..., right, 1:])
    assert np.allclose(flipped_world[..., left, 0], -world[..., right, 0])


def test_geometric_augmentation_keeps_body_proportions():
    """Rotation and yaw in pixel-proportional units are rigid: distances in the world frame are kept."""
    rng = np.random.default_rng(1)
    image = rng.random((4, 2, 33, 4)).astype(np.float32)
    world = rng.random((4, 2, 33, 3)).astype(np.float32)
    cfg = AugmentConfig(rotate_deg=20, yaw_deg=40)
    _, turned = augment(image, world, np.full(4, 4 / 3), cfg, rng)
    dist = np.linalg.norm(world[..., 11, :] - world[..., 27, :], axis=-1)
    assert np.allclose(np.linalg.norm(turned[..., 11, :] - turned[..., 27, :], axis=-1), dist, atol=1e-5)


def test_swap_arms_gives_squats_and_lunges_held_arms_of_each_other_and_leaves_other_classes_alone():
    """Only the arms (elbows, wrists, hands) of the named classes change: held as in a frame of another such window.
    A class name alone is a list of one; a name that is not a class is refused."""
    from musclevision.data.synthetic import synthesize_clip

    rng = np.random.default_rng(2)
    names = ["BodyWeightSquats", "Lunges", "PushUps", "BodyWeightSquats", "PushUps", "PushUps", "PushUps"]
    clips = [synthesize_clip(n, np.random.default_rng(i), missing_rate=0.0) for i, n in enumerate(names)]
    image = np.stack([c.image[:8] for c in clips])
    world = np.stack([c.world[:8] for c in clips])
    cfg = AugmentConfig(swap_arms=1.0, swap_arms_within=("BodyWeightSquats", "Lunges"))
    ours, push_ups = [0, 1, 3], [2, 4, 5, 6]
    rest = [i for i in range(33) if not 13 <= i < 23]  # all but the elbows, wrists and hands

    def elbow(w):  # [.., T] cosine at the left elbow
        u, v = w[..., 11, :] - w[..., 13, :], w[..., 15, :] - w[..., 13, :]
        return (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)

    assert np.ptp(elbow(world[ours]), axis=1).min() > 0.01  # they do move as generated
    for _ in range(5):
        new_image, new_world = augment(image, world, np.full(len(names), 4 / 3), cfg, rng, np.array(names))
        np.testing.assert_array_equal(new_world[:, :, rest], world[:, :, rest])
        np.testing.assert_array_equal(new_image[push_ups], image[push_ups])  # a push-up's arms are the exercise
        np.testing.assert_array_equal(new_world[push_ups], world[push_ups])
        # Each swapped window holds its arms still, as in one frame of ANOTHER squat/lunge window (never a push-up's).
        for item in ours:
            angle = elbow(new_world[item])
            np.testing.assert_allclose(angle, angle[0], atol=1e-5)
            donors = [d for d in ours if np.isclose(elbow(world[d]), angle[0], atol=1e-5).any()]
            assert donors and item not in donors, (item, donors)
            assert not np.isclose(elbow(world[push_ups]), angle[0], atol=1e-5).any()
    with pytest.raises(ValueError, match="swap_arms_within"):
        AugmentConfig(swap_arms=0.5)
    source = SyntheticSource(groups=2, clips_per_group=1)
    module = KeypointDataModule(source, CLASSES, augment={"swap_arms": 0.5, "swap_arms_within": "Lunges"})
    assert module.augment.swap_arms_within == ("Lunges",)
    with pytest.raises(ValueError, match="Squats"):
        KeypointDataModule(source, CLASSES, augment={"swap_arms": 0.5, "swap_arms_within": ["Squats", "Lunges"]})


def test_augmentation_options_are_validated():
    with pytest.raises(ValueError, match="mirror"):
        AugmentConfig(mirror=1.5)
    with pytest.raises(ValueError, match="time_stretch"):
        AugmentConfig(time_stretch=(1.2, 0.8))
    for name in ("yaw_deg", "noise", "mirror"):  # a word where a number belongs: a ValueError naming it, not a TypeError
        with pytest.raises(ValueError, match=f"data.augment.{name}='abc' must be a number"):
            AugmentConfig(**{name: "abc"})


@pytest.mark.integration
def test_datamodule_on_real_keypoints(real_cache):
    dm = KeypointDataModule(VideoCacheSource(str(real_cache)), CLASSES, split={"folds": 2, "fold": 0}, window=8,
                            batch_size=16, augment={"mirror": 0.5, "frame_dropout": 0.1})  # fmt: skip
    dm.setup()
    train_groups = {c.group for c in dm.store("train").clips}
    val_groups = {c.group for c in dm.store("val").clips}
    assert train_groups and val_groups and not train_groups & val_groups
    batch = next(iter(dm.train_dataloader()))
    assert batch["landmarks"].shape == (16, 8, 33, 4) and batch["world"].shape == (16, 8, 33, 3)
    frame_ok = ~np.isnan(batch["landmarks"].numpy()).any(axis=(2, 3))
    assert np.array_equal(frame_ok, ~np.isnan(batch["world"].numpy()).any(axis=(2, 3)))
    windows, whole = dm.eval_loaders("val", whole_clips=True)
    assert len(whole.dataset) == len(dm.store("val").clips)
    # the window policy: every scored window holds at least min_detected (4) frames with a person
    present = ~np.isnan(next(iter(windows))["landmarks"].numpy()).any(axis=(2, 3))
    assert present.sum(1).min() >= 4 and len(windows.dataset) > 0


def test_a_cache_of_other_pose_settings_is_refused_naming_what_differs(tmp_path):
    """Training on a cache extracted with other settings (e.g. before zoom-out retries) is one line that names the
    setting and what to do, not both settings dumped whole."""
    from musclevision.extract import KeypointCache, PoseSettings

    KeypointCache.open_for_writing(tmp_path / "cache", PoseSettings.resolve(zoom_out=1).cache_key())
    videos = tmp_path / "videos" / "PushUps"
    videos.mkdir(parents=True)
    (videos / "v_PushUps_g01_c01.avi").write_bytes(b"not read: refused before any extraction")
    source = VideoCacheSource(str(tmp_path / "cache"), video_root=str(tmp_path / "videos"), pose={"zoom_out": 2})
    with pytest.raises(ValueError) as refused:
        source.prepare(["PushUps"])  # before extracting the missing clip
    assert not (tmp_path / "cache" / "clips").exists() or not any((tmp_path / "cache" / "clips").rglob("*.npz"))
    with pytest.raises(ValueError) as refused:
        VideoCacheSource(str(tmp_path / "cache"), pose={"zoom_out": 2}).load(["PushUps"])
    message = str(refused.value)
    assert "(zoom_out: cache has 1.0, asked 2.0)" in message and "rebuild=true" in message and "\n" not in message
    assert "ask for the cache's settings (data.source.pose.zoom_out=1.0)" in message, "training's own option"
    assert "bundle_sha256" not in message, "only the settings that differ"


@pytest.mark.integration
def test_datamodule_refuses_classes_the_cache_does_not_have(real_cache):
    dm = KeypointDataModule(VideoCacheSource(str(real_cache)), ["JumpingJack", "PushUps"])
    with pytest.raises(ValueError, match="JumpingJack"):
        dm.setup()


def test_length_buckets_cover_every_clip_once_with_less_padding():
    lengths = np.random.default_rng(0).integers(30, 300, 203)
    sampler = BucketBatchSampler(lengths, 32)
    first, second = list(sampler), list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(203)) and len(first) == len(sampler) == 7
    assert first != second  # a new shuffle every epoch
    padded = sum(len(b) * lengths[b].max() for b in first)
    random_batches = np.array_split(np.random.default_rng(1).permutation(203), 7)
    assert padded < 0.8 * sum(len(b) * lengths[b].max() for b in random_batches)


def test_mixed_sampler_takes_every_main_item_and_a_fresh_share_of_extra_ones():
    extra = np.arange(100) >= 30  # 30 main items, 70 extra
    sampler = MixedSampler(extra, 0.5)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 45 and len(set(first)) == 45
    assert sorted(i for i in first if i < 30) == list(range(30))  # every main item, once
    assert {i for i in first if i >= 30} != {i for i in second if i >= 30}  # a new draw every epoch
    assert len(MixedSampler(extra, 10.0)) == 100  # at most all the extra items
    buckets = BucketBatchSampler(np.arange(100) + 10, 8, order=sampler)
    assert sum(len(b) for b in buckets) == 45 and len(buckets) == 6


class ListSource:
    """A keypoint source holding given clips (the datamodule's source interface, in memory)."""

    kind = "real"

    def __init__(self, clips):
        self.clips = clips

    def prepare(self, classes):
        pass

    def load(self, classes):  # no require_all: a source of one's own need not take it
        return [c for c in self.clips if c.label in classes]


FRAME_BYTES = 33 * (4 + 3) * 4  # one frame of a batch: image [33, 4] + world [33, 3], float32


def long_clips(frames=200):
    return [clip(label, f"g{g:02d}", frames, seed=g) for label in CLASSES for g in range(8, 12)]


def peak_bytes(loader) -> tuple[int, dict]:
    """Peak bytes allocated (numpy reports to tracemalloc) while gathering the loader's first batch."""
    import tracemalloc

    tracemalloc.start()
    try:
        batch = next(iter(loader))
        return tracemalloc.get_traced_memory()[1], batch
    finally:
        tracemalloc.stop()


def test_memory_of_a_batch_is_bounded_by_its_frames_not_by_the_window():
    """eval_batch_size=1024 windows of a long window was the blow-up (1024 x 100,000 frames): evaluation
    batches hold at most eval_batch_frames frames, training ones batch_size x window, gathered per batch."""
    split = {"protocol": "group_kfold", "folds": 4, "fold": 0}
    for window in (8, 64, 150):
        data = KeypointDataModule(ListSource(long_clips()), CLASSES, split=split, window=window, batch_size=32,
                                  eval_batch_size=1024, eval_batch_frames=8192)  # fmt: skip
        data.setup()
        peak, batch = peak_bytes(data.eval_loaders("val")[0])
        frames = batch["landmarks"].shape[0] * window
        assert frames <= 8192 and batch["landmarks"].shape[1] == window, (window, batch["landmarks"].shape)
        assert peak < 1.5 * 8192 * FRAME_BYTES, f"window {window}: an evaluation batch peaked at {peak / 1e6:.1f} MB"
        peak, batch = peak_bytes(data.train_dataloader())
        assert batch["landmarks"].shape[:2] == (32, window)
        assert peak < 3 * 32 * window * FRAME_BYTES, f"window {window}: a training batch peaked at {peak / 1e6:.1f} MB"


def test_a_window_longer_than_every_clip_is_refused_with_the_numbers(caplog):
    clips = long_clips(200) + [clip("Lunges", "g13", 40)]
    data = KeypointDataModule(ListSource(clips), CLASSES, window=100_000, split={"protocol": "none"})
    with pytest.raises(ValueError, match=r"data.window=100000 is longer than every clip \(the longest has 200 frames"):
        data.setup()
    with caplog.at_level(logging.WARNING):
        KeypointDataModule(ListSource(clips), CLASSES, window=100, split={"protocol": "none"}).setup()
    assert "data.window=100 is longer than 1 of the 21 clips (the shortest has 40 frames)" in caplog.text
    caplog.clear()  # one short clip among many (1 of 451 in the shared clips): a note, not a warning on every command
    with caplog.at_level(logging.INFO):
        KeypointDataModule(ListSource(long_clips(200) * 4 + clips[-1:]), CLASSES, window=100, split={"protocol": "none"}).setup()
    said = [r for r in caplog.records if "is longer than 1 of the 81 clips" in r.getMessage()]
    assert said and said[0].levelno == logging.INFO, caplog.text


def test_train_extra_clips_join_the_training_side_only():
    real = [clip(label, f"g{g:02d}", 30, seed=g) for label in CLASSES for g in range(8, 14)]
    extra = SyntheticSource(groups=2, clips_per_group=1, seed=0, group_prefix="s", seconds=(2.0, 2.0))
    dm = KeypointDataModule(ListSource(real), CLASSES, split={"folds": 3, "fold": 1}, batch_size=16, train_extra=extra,
                            train_extra_ratio=0.5, augment={})  # fmt: skip
    dm.setup()
    train = dm.train_store()
    groups = [c.group for c in train.clips]
    assert groups.count("s01") == groups.count("s02") == 5 and dm.train_real == len(dm.store("train").clips) == 20
    assert all(c.group.startswith("g") for name in ("val", "all") for c in dm.store(name).clips)  # never validated on
    loader = dm.train_dataloader()
    seen = np.concatenate([b["clip"].numpy() for b in loader])  # every real window, half as many extra ones
    real_windows = int((loader.dataset.clip < 20).sum())
    assert (seen < 20).sum() == real_windows and (seen >= 20).sum() == round(0.5 * real_windows)
    everything = KeypointDataModule(ListSource(real), CLASSES, split={"folds": 3}, train_extra=extra, train_extra_ratio=None)
    everything.setup()
    assert len(everything.train_store().clips) == 30


def test_train_extra_is_validated():
    real = [clip(label, f"g{g:02d}", 30) for label in CLASSES for g in (1, 2, 3)]
    clashing = KeypointDataModule(ListSource(real), CLASSES, split={"folds": 3}, train_extra=SyntheticSource(groups=1))
    clashing.setup()
    with pytest.raises(ValueError, match="train_extra groups.*g01.*another name"):
        clashing.train_store()
    for ratio in (0, -1.0, True):
        with pytest.raises(ValueError, match="data.train_extra_ratio"):
            KeypointDataModule(ListSource(real), CLASSES, train_extra_ratio=ratio)


def test_balance_group_draws_every_class_and_group_alike_whatever_its_clip_lengths():
    # g08 of every class filmed in two clips, one long (8x the frames of any other): it gives most of the windows.
    clips = [clip(label, f"g{g:02d}", 240 if g == 8 else 30, seed=g) for label in CLASSES for g in range(8, 14)]
    clips += [dataclasses.replace(clip(label, "g08", 30, seed=99), video_id=f"{label}/g08-short") for label in CLASSES]
    split = {"folds": 3, "fold": 2}

    def share_of_g08(balance):
        module = KeypointDataModule(ListSource(clips), CLASSES, split=split, batch_size=16, augment={}, balance=balance)
        module.setup()
        loader = module.train_dataloader()
        groups = [c.group for c in module.train_store().clips]
        seen = np.concatenate([b["clip"].numpy() for b in loader])
        assert len(seen) == len(loader.dataset)  # an epoch is as long either way
        assert len({groups[i] for i in seen}) == 4  # 4 training groups, every one drawn
        return np.mean([groups[i] == "g08" for i in seen])

    torch.manual_seed(0)
    assert share_of_g08(None) > 0.7  # g08 dominates
    assert abs(share_of_g08("group") - 1 / 4) < 0.05  # one group in four
    assert abs(share_of_g08("clip") - 2 / 5) < 0.05  # two clips in five
    with pytest.raises(ValueError, match="data.balance='person'"):
        KeypointDataModule(ListSource(clips), CLASSES, balance="person")
    with pytest.raises(ValueError, match="data.sampling=window"):
        KeypointDataModule(ListSource(clips), CLASSES, balance="group", sampling="clip")
    with pytest.raises(ValueError, match="data.balance=clip cannot be combined with data.train_extra"):
        KeypointDataModule(ListSource(clips), CLASSES, balance="clip", train_extra=SyntheticSource(groups=1))


def test_camera_elevation_is_drawn_from_the_range_given():
    """pitch_deg: a number is up to that much higher or lower; [low, high] a one-sided range (+: higher). The drawn
    elevation is read back from the world frame: the shoulders-to-hips vector of an upright body leans towards the
    camera (-z) when the camera is higher."""
    rng = np.random.default_rng(3)
    world = np.zeros((400, 1, 33, 3), np.float32)
    world[..., [11, 12], 1] = -0.5  # shoulders 0.5 m above the hips, upright, facing the camera
    image = np.full((400, 1, 33, 4), 0.5, np.float32)

    def elevations(pitch):
        cfg = AugmentConfig(pitch_deg=pitch)
        _, turned = augment(image, world, np.full(400, 4 / 3), cfg, rng)
        up = turned[:, 0, 11] - turned[:, 0, 23]
        return np.degrees(np.arctan2(-up[:, 2], -up[:, 1]))  # + : the top of the body leans towards the camera

    both = elevations(30)
    assert -30 <= both.min() < -25 and 25 < both.max() <= 30
    above = elevations([10, 60])
    assert 10 <= above.min() < 15 and 55 < above.max() <= 60
    from omegaconf import OmegaConf

    from_hydra = OmegaConf.create({"pitch": [10, 60]}).pitch  # a ListConfig, as Hydra passes it
    assert AugmentConfig(pitch_deg=from_hydra).pitch_range == (10.0, 60.0) and AugmentConfig(pitch_deg=5).pitch_range == (-5, 5)
    for bad in ([60, 10], [-100, 0], [1, 2, 3], "abc", "12", ["a", 1], [True, 5], None, True, 120, -5):
        with pytest.raises(ValueError, match=r"data.augment.pitch_deg=.*\[low, high\]"):
            AugmentConfig(pitch_deg=bad)


def test_the_synthetic_generator_with_classes_it_cannot_make_is_refused_when_the_data_is_set_up():
    """experiment=best_synth (synthetic clips mixed in) with one's own class names: named at once, with the fix."""
    from musclevision.data.sources import SyntheticSource

    expected = (
        r"data.train_extra is the synthetic generator, .*: it has no Squat, Press \(data.classes\); "
        r"for your own classes use experiment=best, or data/train_extra=null"
    )
    with pytest.raises(ValueError, match=expected):
        KeypointDataModule(ListSource([]), ["Squat", "PushUps", "Press"], train_extra=SyntheticSource(groups=1))
    with pytest.raises(ValueError, match="data.source is the synthetic generator, .*: it has no Squat"):
        KeypointDataModule(SyntheticSource(groups=1), ["Squat", "PushUps"])
    KeypointDataModule(ListSource([]), ["PushUps", "Lunges"], train_extra=SyntheticSource(groups=1))  # known: fine
