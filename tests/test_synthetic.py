"""The synthetic data source: format, determinism, plausible bodies, and a task that must be learned."""

from __future__ import annotations

import numpy as np
import pytest

from musclevision.data.synthetic import EXERCISES, synthesize_clip, synthesize_dataset
from musclevision.pose.skeleton import MIRROR, NUM_LANDMARKS

MIRROR_IDX = np.array(MIRROR)


@pytest.fixture(scope="module")
def clips():
    return synthesize_dataset(EXERCISES)  # the default call that data=synthetic makes


@pytest.fixture(scope="module")
def clean():
    return synthesize_dataset(EXERCISES, groups=3, clips_per_group=2, seed=5, noise=0.0, missing_rate=0.0)


def _angle(p, a, b, c):
    """Angle at b (degrees) of the chain a-b-c, per frame."""
    u, v = p[:, a] - p[:, b], p[:, c] - p[:, b]
    cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_shapes_dtypes_and_nan_rows(clips):
    assert len(clips) == 12 * 5 * 3
    for c in clips:
        assert c.image.dtype == np.float32 and c.world.dtype == np.float32
        assert c.image.shape == (c.frames, NUM_LANDMARKS, 4) and c.world.shape == (c.frames, NUM_LANDMARKS, 3)
        assert 3.0 * c.fps - 1 <= c.frames <= 8.0 * c.fps + 1
        img_nan, world_nan = np.isnan(c.image).any(-1), np.isnan(c.world).any(-1)
        assert (img_nan == world_nan).all()
        assert (img_nan.all(1) == img_nan.any(1)).all()  # whole rows or nothing
        assert c.detected.sum() >= c.frames // 2
        vis = c.image[c.detected][..., 3]
        assert vis.min() >= 0 and vis.max() <= 1
        assert (c.fps, c.width, c.height) == (25.0, 320, 240)


def test_naming_and_groups(clips):
    ids = [c.video_id for c in clips]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "BenchPress/v_BenchPress_g01_c01"
    assert "WallPushups/v_WallPushups_g12_c03" in ids
    for c in clips:
        assert c.video_id.startswith(f"{c.label}/v_{c.label}_{c.group}_c")
    assert sorted({c.group for c in clips}) == [f"g{g:02d}" for g in range(1, 13)]


def test_unknown_class_raises():
    with pytest.raises(ValueError, match="JumpingJack.*BenchPress"):
        synthesize_dataset(["PushUps", "JumpingJack"], groups=1)
    with pytest.raises(ValueError, match="Nope"):
        synthesize_clip("Nope", np.random.default_rng(0))


def test_deterministic_in_seed():
    a = synthesize_dataset(["Lunges", "PushUps"], groups=2, clips_per_group=1, seed=3)
    b = synthesize_dataset(["Lunges", "PushUps"], groups=2, clips_per_group=1, seed=3)
    c = synthesize_dataset(["Lunges", "PushUps"], groups=2, clips_per_group=1, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.world, y.world)
    assert any(x.image.shape != z.image.shape or not np.allclose(x.image, z.image, equal_nan=True)
               for x, z in zip(a, c, strict=True))  # fmt: skip
    # A class's clips do not depend on which other classes were asked for.
    alone = synthesize_dataset(["PushUps"], groups=2, clips_per_group=1, seed=3)
    np.testing.assert_array_equal(alone[0].image, a[1].image)


def test_bone_lengths_constant_and_hip_centred(clips, clean):
    bones = [(23, 25), (24, 26), (25, 27), (11, 13), (12, 14), (13, 15), (11, 12)]
    for c in clean:  # no noise: rigid bones exactly
        w = c.world.astype(float)
        for a, b in bones:
            length = np.linalg.norm(w[:, a] - w[:, b], axis=-1)
            assert length.std() < 1e-3 * length.mean(), (c.video_id, a, b)
        assert np.abs(w[:, 23:25].mean(1)).max() < 1e-4
    spread = []
    for c in clips:  # with tracker noise and occlusions: still nearly constant, hips near the origin
        w = c.world[c.detected].astype(float)
        for a, b in bones:
            length = np.linalg.norm(w[:, a] - w[:, b], axis=-1)
            assert 0.15 < length.mean() < 0.6, (c.video_id, a, b)
            spread.append(length.std() / length.mean())
        assert np.linalg.norm(w[:, 23:25].mean(1), axis=-1).mean() < 0.05
    assert np.median(spread) < 0.08 and max(spread) < 0.3


def test_world_axes_y_down(clean):
    for c in clean:
        w = c.world
        if c.label in ("BodyWeightSquats", "Lunges", "WallPushups"):  # standing: head above (y smaller) the ankles
            assert (w[:, 0, 1] < w[:, 27:29, 1].mean(1) - 0.5).all(), c.video_id


def test_landmarks_mostly_in_frame(clips):
    img = np.concatenate([c.image[c.detected] for c in clips])
    visible = img[..., 3] > 0.5
    xy = img[..., :2][visible]
    inside = ((xy >= 0) & (xy <= 1)).all(-1)
    assert visible.mean() > 0.6 and inside.mean() > 0.95
    assert (img[..., 3] < 0.5).mean() > 0.05  # some self-occlusion happens too


def test_missing_rate_near_requested(clips):
    missing = np.concatenate([~c.detected for c in clips])
    assert 0.02 < missing.mean() < 0.04
    more = synthesize_dataset(["Lunges"], groups=4, missing_rate=0.1)
    assert 0.07 < np.mean(np.concatenate([~c.detected for c in more])) < 0.13


def test_every_exercise_moves(clean):
    for c in clean:
        w = c.world.astype(float)
        knee = np.minimum(_angle(w, 23, 25, 27), _angle(w, 24, 26, 28))
        elbow = np.minimum(_angle(w, 11, 13, 15), _angle(w, 12, 14, 16))
        moving = knee if c.label in ("BodyWeightSquats", "Lunges") else elbow
        assert np.ptp(moving) > 40, (c.video_id, np.ptp(moving))
        if c.label == "BodyWeightSquats":
            assert knee.min() < 110 and knee.max() > 150  # to about parallel and back up


def _features(c):
    """Per-clip mean and std of the hip-centred, torso-scaled 2-D pose, mirrored so the nose points right."""
    xy = c.image[c.detected][..., :2].astype(float) * [1, c.height / c.width]
    hip = xy[:, 23:25].mean(1, keepdims=True)
    pose = (xy - hip) / np.median(np.linalg.norm(xy[:, 11:13].mean(1) - hip[:, 0], axis=-1))
    if pose[:, 0, 0].mean() < 0:
        pose = pose[:, MIRROR_IDX] * [-1, 1]
    return np.concatenate([pose.mean(0).ravel(), pose.std(0).ravel()])


def _centroid_accuracy(feats, y, train):
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6
    f = (feats - mu) / sd
    centroids = np.stack([f[train & (y == k)].mean(0) for k in range(len(EXERCISES))])
    pred = np.argmin(((f[~train, None] - centroids) ** 2).sum(-1), 1)
    return (pred == y[~train]).mean()


def test_classes_separable_by_pose_but_not_by_one_coordinate(clips):
    y = np.array([EXERCISES.index(c.label) for c in clips])
    train = np.array([int(c.group[1:]) <= 8 for c in clips])  # unseen people/scenes at test time
    assert _centroid_accuracy(np.stack([_features(c) for c in clips]), y, train) >= 0.8
    raw = np.stack([np.nanmean(c.image[..., :2], 0).ravel() for c in clips])
    single = [_centroid_accuracy(raw[:, [d]], y, train) for d in range(raw.shape[1])]
    assert max(single) < 0.7  # chance is 0.2: no single raw coordinate gives the task away
