"""The synthetic data source: format, determinism, plausible bodies, and a task that must be learned."""

from __future__ import annotations

import numpy as np
import pytest

from musclevision.data.synthetic import ARMS, EXERCISES, HABITS, sample_subject, synthesize_clip, synthesize_dataset
from musclevision.pose.geometry import joint_angle
from musclevision.pose.skeleton import JOINTS, NUM_LANDMARKS, landmark


@pytest.fixture(scope="module")
def clips():
    return synthesize_dataset(EXERCISES)  # the default call that data=synthetic makes


@pytest.fixture(scope="module")
def clean():
    return synthesize_dataset(EXERCISES, groups=3, clips_per_group=2, seed=5, noise=0.0, missing_rate=0.0, failures=False)


def test_shapes_dtypes_and_nan_rows(clips):
    assert len(clips) == 12 * 5 * 3
    for c in clips:
        assert c.image.dtype == np.float32 and c.world.dtype == np.float32
        assert c.image.shape == (c.frames, NUM_LANDMARKS, 4) and c.world.shape == (c.frames, NUM_LANDMARKS, 3)
        assert 3.0 * c.fps - 1 <= c.frames <= 8.0 * c.fps + 1
        img_nan, world_nan = np.isnan(c.image).any(-1), np.isnan(c.world).any(-1)
        assert (img_nan == world_nan).all()
        assert (img_nan.all(1) == img_nan.any(1)).all()  # whole rows or nothing
        assert c.has_person.sum() >= c.frames // 2
        vis = c.image[c.has_person][..., 3]
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


def test_unknown_class_or_habit_raises():
    with pytest.raises(ValueError, match="JumpingJack.*BenchPress"):
        synthesize_dataset(["PushUps", "JumpingJack"], groups=1)
    with pytest.raises(ValueError, match="Nope"):
        synthesize_clip("Nope", np.random.default_rng(0))
    with pytest.raises(ValueError, match="'arm'.*known: .*arms"):
        synthesize_clip("BodyWeightSquats", np.random.default_rng(0), habits={"arm": "hips"})
    with pytest.raises(ValueError, match="arms='akimbo'.*behind_head"):
        synthesize_clip("BodyWeightSquats", np.random.default_rng(0), habits={"arms": "akimbo"})
    with pytest.raises(ValueError, match="'support'.*BenchPress, Lunges"):  # no asked-for class has that habit
        synthesize_dataset(["BenchPress", "Lunges"], groups=1, habits={"support": "knees"})


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


def test_fixing_one_habit_leaves_the_others():
    """Turning the camera (a habit) changes the view, not the movement: joint angles stay, image points move."""
    subject = sample_subject(np.random.default_rng(7))
    clips = [synthesize_clip("Lunges", np.random.default_rng(1), subject, noise=0.0, missing_rate=0.0, failures=False,
                             habits=habits) for habits in ({}, {"azimuth": 30.0}, {"azimuth": 150.0})]  # fmt: skip
    angles = [np.stack([joint_angle(c.world.astype(float), j) for j in ("left_knee", "right_knee", "left_elbow")]) for c in clips]
    for other in angles[1:]:
        np.testing.assert_allclose(other, angles[0], atol=1e-3)
    assert not np.allclose(clips[1].image[..., :2], clips[2].image[..., :2], atol=0.02)


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
        w = c.world[c.has_person].astype(float)
        for a, b in bones:
            length = np.linalg.norm(w[:, a] - w[:, b], axis=-1)
            assert 0.15 < length.mean() < 0.6, (c.video_id, a, b)
            spread.append(length.std() / length.mean())
        assert np.linalg.norm(w[:, 23:25].mean(1), axis=-1).mean() < 0.05
    assert np.median(spread) < 0.1 and np.percentile(spread, 95) < 0.3  # the rest: MediaPipe's label swaps


def test_world_axes_y_down(clean):
    for c in clean:
        w = c.world
        if c.label in ("BodyWeightSquats", "Lunges", "WallPushups"):  # standing: head above (y smaller) the ankles
            assert (w[:, 0, 1] < w[:, 27:29, 1].mean(1) - 0.25).all(), c.video_id  # (a high camera tilts the axes)


def test_landmarks_mostly_in_frame(clips):
    img = np.concatenate([c.image[c.has_person] for c in clips])
    visible = img[..., 3] > 0.5
    xy = img[..., :2][visible]
    inside = ((xy >= 0) & (xy <= 1)).all(-1)
    assert visible.mean() > 0.6 and inside.mean() > 0.95
    assert (img[..., 3] < 0.5).mean() > 0.05  # some self-occlusion happens too


def test_missing_rate_near_requested(clips):
    missing = np.concatenate([~c.has_person for c in clips])
    assert 0.02 < missing.mean() < 0.04
    more = synthesize_dataset(["Lunges"], groups=4, missing_rate=0.1)
    assert 0.07 < np.mean(np.concatenate([~c.has_person for c in more])) < 0.13


def test_every_exercise_moves(clean):
    for c in clean:
        w = c.world.astype(float)
        knee = np.minimum(joint_angle(w, "left_knee"), joint_angle(w, "right_knee"))
        elbow = np.minimum(joint_angle(w, "left_elbow"), joint_angle(w, "right_elbow"))
        moving = knee if c.label in ("BodyWeightSquats", "Lunges") else elbow
        assert np.ptp(moving) > 20, (c.video_id, np.ptp(moving))  # real clips: 10th percentile 17 (wall) to 30 deg
        if c.label == "BodyWeightSquats":
            assert knee.min() < 135 and knee.max() > 150  # quarter squats to deep ones, and back up
    deep = synthesize_clip("BodyWeightSquats", np.random.default_rng(0), noise=0.0, habits={"depth": 1.0})
    knee = joint_angle(deep.world[deep.has_person].astype(float), "left_knee")
    assert knee.min() < 110 and knee.max() > 150  # to about parallel and back up


def _features(c):
    """Per-clip mean and std of view-independent pose statistics: world joint angles, and how far the torso and the
    legs lean from the camera's vertical (cameras are roughly level)."""
    w = c.world[c.has_person].astype(float)
    angles = np.stack([joint_angle(w, j) for j in JOINTS], 1)
    torso, legs = w[:, 11:13].mean(1) - w[:, 23:25].mean(1), w[:, 23:25].mean(1) - w[:, 27:29].mean(1)
    lean = np.stack([-v[:, 1] / np.linalg.norm(v, axis=-1) for v in (torso, legs)], 1)
    f = np.concatenate([angles, lean], 1)
    return np.concatenate([f.mean(0), f.std(0)])


def _centroid_accuracy(feats, y, train):
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6
    f = (feats - mu) / sd
    centroids = np.stack([f[train & (y == k)].mean(0) for k in range(len(EXERCISES))])
    pred = np.argmin(((f[~train, None] - centroids) ** 2).sum(-1), 1)
    return (pred == y[~train]).mean()


def test_classes_separable_by_pose_but_not_by_one_coordinate(clips):
    """Three-fold cross-validation over people (4 unseen people x 15 clips per fold) of a nearest-centroid classifier."""
    y = np.array([EXERCISES.index(c.label) for c in clips])
    folds = np.array([int(c.group[1:]) % 3 for c in clips])
    feats = np.stack([_features(c) for c in clips])
    assert np.mean([_centroid_accuracy(feats, y, folds != f) for f in range(3)]) >= 0.8
    raw = np.stack([np.nanmean(c.image[..., :2], 0).ravel() for c in clips])
    single = [np.mean([_centroid_accuracy(raw[:, [d]], y, folds != f) for f in range(3)]) for d in range(raw.shape[1])]
    assert max(single) < 0.7  # chance is 0.2: no single raw coordinate gives the task away


def _clean(label, seed=0, seconds=(3.0, 8.0), failures=False, **habits):
    """A noise-free clip with these habits, filmed level (elevation 0), MediaPipe's mistakes off unless asked."""
    return synthesize_clip(label, np.random.default_rng(seed), sample_subject(np.random.default_rng(seed + 100)), noise=0.0,
                           missing_rate=0.0, seconds=seconds, failures=failures, habits={"elevation": 0.0, **habits})  # fmt: skip


def test_every_habit_is_known_and_used():
    for label, names in HABITS.items():
        for name in names:  # each habit can be fixed; fixing it keeps the clip valid
            value = {"arms": "hips", "variant": "walking", "support": "knees", "surface": "incline", "behind": "clip",
                     "weight": "dumbbells", "feet": "up", "hidden": "both arms"}.get(name, 0.2)  # fmt: skip
            clip = synthesize_clip(label, np.random.default_rng(0), habits={name: value}, noise=0.0)
            assert np.isfinite(clip.world[clip.has_person]).all(), (label, name)


@pytest.mark.parametrize("label", ["BodyWeightSquats", "Lunges"])
def test_arm_positions_while_the_legs_work(label):
    head = [landmark("left_ear"), landmark("right_ear")]
    wrists, shoulders, hips = [15, 16], [11, 12], [23, 24]
    for arms in ARMS:
        w = _clean(label, arms=arms, azimuth=60.0).world.astype(float)
        ear = w[:, head].mean(1, keepdims=True)
        to_head = np.linalg.norm(w[:, wrists] - ear, axis=-1)
        y = {name: w[:, idx, 1].mean(1) for name, idx in (("wrist", wrists), ("shoulder", shoulders), ("hip", hips))}
        if arms == "behind_head":  # the hands stay at the back of the head all the way down
            assert to_head.max() < 0.2, to_head.max()
        else:
            assert to_head.min() > 0.15, (arms, to_head.min())
        if arms == "overhead":
            assert (y["wrist"] < ear[:, 0, 1] - 0.15).all()  # y down: above the head
        if arms == "hanging":
            assert (y["wrist"] > y["hip"] - 0.15).all()
        if arms == "forward":
            assert np.abs(y["wrist"] - y["shoulder"]).max() < 0.15  # held at shoulder height
        if arms == "hips":
            assert np.linalg.norm(w[:, wrists] - w[:, hips], axis=-1).max() < 0.2


def test_from_behind_mediapipe_may_swap_sides_and_still_sees_a_face():
    """Seen from behind, the person's left is on the image's left. MediaPipe often takes the back for a front: the
    labels swap (left shoulder on the right) and depth mirrors (the nose comes towards the camera), not the pixels.
    Either way it reports the face as visible (real clips filmed from behind: face visibility ~0.99), so face
    visibility must not tell the view; a part the scene hides (habit ``hidden``) does get low visibility."""
    face = list(range(11))
    for squat in (_clean("BodyWeightSquats", azimuth=180.0, behind="none"), _clean("WallPushups", azimuth=180.0)):
        assert (squat.image[:, 11, 0] < squat.image[:, 12, 0]).all() and (squat.world[:, 0, 2] > 0).all()
        assert squat.image[..., face, 3].mean() > 0.95
    flipped = _clean("BodyWeightSquats", azimuth=180.0, behind="clip", failures=True)
    assert (flipped.image[:, 11, 0] > flipped.image[:, 12, 0]).all() and (flipped.world[:, 0, 2] < 0).all()
    assert flipped.image[..., face, 3].mean() > 0.95
    # From the front nothing is swapped, whatever MediaPipe's habit.
    facing = _clean("BodyWeightSquats", azimuth=0.0, behind="clip", failures=True)
    assert (facing.image[:, 11, 0] > facing.image[:, 12, 0]).all() and (facing.world[:, 0, 2] < 0).all()
    hidden = _clean("WallPushups", azimuth=90.0, hidden="left leg").image[..., 3]
    assert (hidden[:, [25, 27, 29, 31]] < 0.5).mean() > 0.9 and (hidden[:, [26, 28, 30, 32]] < 0.5).mean() < 0.5


def test_mediapipe_failures_happen_in_the_default_data(clips):
    """Sides swapped in some frames (a left-right order that flips against the clip's usual one)."""
    swapped = []
    for c in clips:
        d = np.sign(c.world[c.has_person][:, 11, 0] - c.world[c.has_person][:, 12, 0])
        swapped.append(min((d > 0).mean(), (d < 0).mean()))
    assert 0.01 < np.mean(np.array(swapped) > 0.1) < 0.5


def _inclination(w):
    """Degrees between the ankle-to-shoulder line and the vertical (camera level, y down)."""
    v = w[:, 11:13].mean(1) - w[:, 27:29].mean(1)
    return np.degrees(np.arccos(np.clip(-v[:, 1] / np.linalg.norm(v, axis=-1), -1, 1)))


def test_push_up_variants_wall_bench_floor_and_knees():
    knee = lambda w: np.minimum(joint_angle(w, "left_knee"), joint_angle(w, "right_knee"))  # noqa: E731
    for seed in range(3):
        wall = _clean("WallPushups", seed, azimuth=90.0).world.astype(float)
        floor = _clean("PushUps", seed, azimuth=90.0, surface="floor", support="toes").world.astype(float)
        incline = _clean("PushUps", seed, azimuth=90.0, surface="incline", support="toes").world.astype(float)
        knees = _clean("PushUps", seed, azimuth=90.0, surface="floor", support="knees").world.astype(float)
        assert _inclination(wall).max() < 45 < _inclination(incline).min()
        assert _inclination(incline).mean() < _inclination(floor).mean() - 10 and _inclination(floor).min() > 65
        assert knee(floor).min() > 170 and knee(knees).min() < 150  # straight legs vs kneeling


def test_lunge_variants_and_squat_stance():
    """Side view (the person faces image -x): forward lunges move the hips forward at the bottom, reverse lunges
    backward; walking lunges travel; a sumo stance is wider than a narrow one."""

    def hip_and_knee(**habits):
        c = _clean("Lunges", seconds=6.0, azimuth=90.0, fill=0.5, **habits)
        bend = 180 - np.minimum(joint_angle(c.world.astype(float), "left_knee"), joint_angle(c.world.astype(float), "right_knee"))
        return c.image[:, 23:25, 0].mean(1), bend

    x, bend = hip_and_knee(variant="forward")
    assert np.corrcoef(x, bend)[0, 1] < -0.5
    still = np.ptp(x)
    x, bend = hip_and_knee(variant="reverse")
    assert np.corrcoef(x, bend)[0, 1] > 0.5
    x, _ = hip_and_knee(variant="walking")
    assert x[-1] < x[0] - 0.08 and np.ptp(x) > 2 * still  # the person walks across the frame
    width = {s: np.ptp(_clean("BodyWeightSquats", stance=s, azimuth=0.0).world[:, 27:29, 0], axis=1).mean() for s in (0.0, 0.3)}
    assert width[0.3] > width[0.0] + 0.4
