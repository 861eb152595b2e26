"""Views and bodies never filmed (pose/transforms.py), the body-centred features, and the stress suite's report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musclevision.data.synthetic import synthesize_clip
from musclevision.models.features import LandmarkFeatures
from musclevision.models.stress import CONDITIONS, group_metrics, person_group, stress_summary
from musclevision.pose import transforms
from musclevision.pose.geometry import canonical_world
from musclevision.pose.skeleton import BONES, MIRROR, PARENT
from musclevision.sweep import compare

ASPECT = 4 / 3


@pytest.fixture(scope="module")
def clip():
    """A real-looking squat (kinematic generator, MediaPipe-format image and world landmarks), a few NaN rows."""
    c = synthesize_clip("BodyWeightSquats", np.random.default_rng(0), missing_rate=0.1)
    return c.image[None], c.world[None]  # [1, T, 33, 4], [1, T, 33, 3]


def bone_lengths(points: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1) for a, b in BONES], -1)


def image_3d(image: np.ndarray, aspect: float = ASPECT) -> np.ndarray:
    """Image landmarks in height units, depth included: the frame the transforms rotate in."""
    return image[..., :3] * np.array([aspect, 1.0, aspect])


@pytest.mark.parametrize("name", ["turned 45°", "turned 90°", "turned 180°", "camera 25° higher", "camera 15° lower"])
def test_rotations_keep_bone_lengths_in_world_and_image(clip, name):
    image, world = clip
    new_image, new_world = CONDITIONS[name](image, world, np.array([ASPECT]))
    np.testing.assert_allclose(bone_lengths(new_world), bone_lengths(world), atol=1e-5)
    np.testing.assert_allclose(bone_lengths(image_3d(new_image)), bone_lengths(image_3d(image)), atol=1e-5)
    assert np.array_equal(np.isnan(new_image), np.isnan(image)), "a frame without a person stays without one"
    np.testing.assert_array_equal(new_image[..., 3], image[..., 3])  # visibility is left as it was


def test_image_and_world_turn_together(clip):
    """The re-projection is consistent: the image skeleton (height units, hip-centred) turns exactly as the world one."""
    image, world = clip
    turned_image, turned_world = transforms.rotate_yaw(image, world, ASPECT, np.pi / 3)
    hips = lambda p: p - 0.5 * (p[..., 23:24, :] + p[..., 24:25, :])  # noqa: E731
    rot = np.array([[np.cos(np.pi / 3), 0, np.sin(np.pi / 3)], [0, 1, 0], [-np.sin(np.pi / 3), 0, np.cos(np.pi / 3)]])
    np.testing.assert_allclose(hips(image_3d(turned_image)), hips(image_3d(image)) @ rot.T, atol=1e-5)
    np.testing.assert_allclose(turned_world, world @ rot.T, atol=1e-5)
    # turning by 90 degrees four times is the identity
    back = (image, world)
    for _ in range(4):
        back = transforms.rotate_yaw(*back, ASPECT, np.pi / 2)
    np.testing.assert_allclose(back[0], image, atol=1e-5)


def test_mirroring_twice_is_the_identity_and_swaps_sides(clip):
    image, world = clip
    once = transforms.mirror(image, world)
    twice = transforms.mirror(*once)
    np.testing.assert_allclose(twice[0], image, atol=1e-6)
    np.testing.assert_allclose(twice[1], world, atol=1e-6)
    np.testing.assert_allclose(once[1][..., 15, 0], -world[..., MIRROR[15], 0])  # left wrist <- mirrored right wrist


def test_other_bodies_change_only_the_named_segments(clip):
    image, world = clip
    _, longer = transforms.scale_segments(image, world, ASPECT, {"thighs": 1.2})
    lengths = lambda w, i: np.linalg.norm(w[..., i, :] - w[..., PARENT[i], :], axis=-1)  # noqa: E731
    np.testing.assert_allclose(lengths(longer, 25), 1.2 * lengths(world, 25), rtol=1e-5)  # left thigh
    np.testing.assert_allclose(lengths(longer, 27), lengths(world, 27), rtol=1e-5)  # left shin: same length, moved


def test_transplanted_arms_follow_the_recipients_facing_and_size(clip):
    """Arms taken from oneself change nothing. A body turned by 70 degrees and grown by 10 %, given someone else's
    arms, gets its own original arms back turned and grown exactly as it is, in world and image; the rest stays."""
    image, world = clip
    arms = list(range(13, 23))
    same = transforms.transplant(image, world, ASPECT, image, world, ASPECT, arms)
    np.testing.assert_allclose(same[0], image, atol=1e-5)
    np.testing.assert_allclose(same[1], world, atol=1e-5)

    # The recipient: the same person turned by 70 degrees, 10 % larger in the world and 30 % larger in a 16:9 image
    # (nearer a wider camera), wearing someone else's arms. The donor: the person as filmed, in a 4:3 image.
    wide = 16 / 9
    turned = transforms.rotate_yaw(image, world, ASPECT, np.deg2rad(70))
    turned_image = turned[0].copy()
    turned_image[..., :3] = image_3d(turned[0]) * 1.3 / np.array([wide, 1.0, wide])  # height units -> 16:9 image
    grown = (turned_image, turned[1] * 1.1)
    other = synthesize_clip("BodyWeightSquats", np.random.default_rng(1), missing_rate=0.0)
    frames = min(other.frames, image.shape[1])
    recipient = tuple(p[:, :frames].copy() for p in grown)
    for mine, theirs in zip(recipient, (other.image, other.world)):
        mine[..., arms, :] = theirs[None, :frames, arms]  # the turned person with someone else's arms
    given = transforms.transplant(*recipient, wide, image[:, :frames], world[:, :frames], ASPECT, arms)
    # Bones below the shoulders equal the grown, turned person's own ones; nothing else moved.
    bones = lambda p: p[..., arms, :3] - p[..., [PARENT[i] for i in arms], :3]  # noqa: E731
    valid = ~np.isnan(world[:, :frames]).any((-1, -2))
    np.testing.assert_allclose(bones(given[1])[valid], bones(grown[1][:, :frames])[valid], atol=1e-4)
    np.testing.assert_allclose(
        bones(image_3d(given[0], wide))[valid], bones(image_3d(grown[0][:, :frames], wide))[valid], atol=1e-4
    )
    np.testing.assert_array_equal(given[0][..., arms, 3][valid], image[:, :frames, arms, 3][valid])  # donor's visibility
    keep = [i for i in range(33) if i not in arms]
    np.testing.assert_array_equal(given[1][..., keep, :], recipient[1][..., keep, :])
    np.testing.assert_array_equal(given[0][~valid], recipient[0][~valid])  # no donor frame: its own arms


def test_canonical_features_do_not_change_when_the_body_is_turned_or_grows(clip):
    image, world = clip
    features = LandmarkFeatures(coords="canonical", velocity=True, visibility=False, angles="world")
    as_filmed, _ = features(torch.from_numpy(image), torch.from_numpy(world))
    for angle in (0.7, np.pi / 2, np.pi, -2.5):
        turned = transforms.rotate_yaw(image, world, ASPECT, angle)
        got, _ = features(*(torch.from_numpy(a) for a in turned))
        torch.testing.assert_close(got, as_filmed, atol=1e-5, rtol=0)
    valid = torch.from_numpy(~np.isnan(world).any((-1, -2)))
    points = torch.from_numpy(np.nan_to_num(world))
    want = canonical_world(points, valid)
    torch.testing.assert_close(canonical_world(points * 1.3, valid), want, atol=1e-5, rtol=0)  # a taller person


def test_asymmetry_features_tell_a_lunge_stance_from_a_squat_from_any_side_and_mirrored(clip):
    """The asymmetry features (feet, knees, wrists apart front-to-back and across; left/right angle gaps) do not change
    when the body is turned or mirrored; a lunge's feet are far apart front-to-back, a squat's side by side."""
    image, world = clip
    features = LandmarkFeatures(coords="canonical", visibility=False, asymmetry=True)
    assert features.out_features == 99 + LandmarkFeatures.ASYMMETRY == 99 + 11
    as_filmed, _ = features(torch.from_numpy(image), torch.from_numpy(world))
    for coords in ("world", "world+canonical"):  # computed on its own, or taken from the canonical positions: the same
        other, _ = LandmarkFeatures(coords=coords, visibility=False, asymmetry=True)(
            torch.from_numpy(image), torch.from_numpy(world)
        )
        torch.testing.assert_close(other[..., -LandmarkFeatures.ASYMMETRY :], as_filmed[..., 99:], atol=0, rtol=0)
    for turned in [transforms.rotate_yaw(image, world, ASPECT, a) for a in (0.7, np.pi / 2, np.pi, -2.5)] + [
        transforms.mirror(image, world)
    ]:
        got, _ = features(*(torch.from_numpy(np.ascontiguousarray(a)) for a in turned))
        torch.testing.assert_close(got[..., 99:], as_filmed[..., 99:], atol=1e-5, rtol=0)

    def stance(label):  # front-back distance of the ankles, body sizes: median over the clip
        c = synthesize_clip(label, np.random.default_rng(1), missing_rate=0.0)
        got, _ = LandmarkFeatures(coords="canonical", visibility=False, asymmetry=True)(
            torch.from_numpy(c.image[None]), torch.from_numpy(c.world[None])
        )
        return float(got[0, :, 99].median())

    assert stance("Lunges") > 0.3 and stance("BodyWeightSquats") < 0.1


def test_group_metrics_and_worst_group():
    evaluation = {
        "per_clip": {
            "video_id": ["A/v_A_g08_c01", "A/v_A_g08_c02", "B/v_B_g08_c01", "B/v_B_g09_c01"],
            "label": [0, 0, 1, 1],
            "predicted": [0, 1, 1, None],  # a clip without a usable window counts as wrong
        }
    }
    result = group_metrics(evaluation)
    assert result["groups"] == {
        "A/g08": {"clips": 2, "clip_acc": 0.5},
        "B/g08": {"clips": 1, "clip_acc": 1.0},
        "B/g09": {"clips": 1, "clip_acc": 0.0},
    }
    assert result["worst_group"] == {"group": "B/g09", "clips": 1, "clip_acc": 0.0}
    assert person_group("WallPushups/v_WallPushups_g11_c03") == "WallPushups/g11"


def test_stress_summary_reports_drops_and_the_worst_condition():
    reference = {"window": {"acc": 0.9}, "clip": {"acc": 1.0}}
    results = {
        "turned 90°": {"window": {"acc": 0.6}, "clip": {"acc": 0.7}},
        "mirrored": {"window": {"acc": 0.9}, "clip": {"acc": 1.0}},
    }
    summary = stress_summary(results, reference)
    assert summary["turned 90°"]["clip_drop"] == pytest.approx(0.3) and summary["mirrored"]["window_drop"] == 0.0
    assert summary["worst"]["condition"] == "turned 90°"
    # no clip lost anywhere: the worst is the condition that loses most windows, not the first one listed
    results = {"turned 45°": {"window": {"acc": 0.9}, "clip": {"acc": 1.0}},
               "camera 25° higher": {"window": {"acc": 0.87}, "clip": {"acc": 1.0}}}  # fmt: skip
    assert stress_summary(results, reference)["worst"]["condition"] == "camera 25° higher"


def fake_crossval(sweep, experiment: str, turned: float) -> None:
    """Two folds of one recipe as run folders: overrides and a report with groups and the stress suite."""
    for fold in (0, 1):
        run = sweep / str(fold)
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(f"- experiment={experiment}\n- data.split.fold={fold}\n")
        stress = {"turned 90°": {"window_acc": turned, "clip_acc": turned, "window_drop": 0.9 - turned,
                                 "clip_drop": 0.9 - turned}}  # fmt: skip
        stress["worst"] = {"condition": "turned 90°", **stress["turned 90°"]}
        report = {"window": {"acc": 0.9, "bacc": 0.9}, "clip": {"acc": 0.9, "bacc": 0.9}, "epoch": 1,
                  "groups": {f"A/g{fold}": {"clips": 2, "clip_acc": 0.5 + fold / 4}}, "stress": stress}  # fmt: skip
        (run / "val_metrics.json").write_text(json.dumps(report))


def test_compare_puts_cross_validations_side_by_side(tmp_path, capsys, monkeypatch):
    """musclevision-compare A B: every recipe's fold mean, worst group and stress column; nothing written."""
    fake_crossval(tmp_path / "world8", "world8", turned=0.5)
    fake_crossval(tmp_path / "best", "best", turned=0.9)
    monkeypatch.setenv("COLUMNS", "300")
    assert compare.main([str(tmp_path / "world8"), str(tmp_path / "best")]) == 0
    out = capsys.readouterr().out
    assert "world8/0" in out and "best/1" in out  # runs named by sweep: job numbers repeat
    assert "experiment=world8 clip acc" in out and "experiment=best clip acc" in out, out
    assert "-40.0 pts" in out and "A/g0 50%" in out
    assert not list(tmp_path.rglob("crossval.json")) and not list(tmp_path.rglob("best.json"))
    words = "".join(out.split())  # (the table's title wraps anywhere)
    assert "side by side: nothing written" in out and f"checkpointsunder{tmp_path / 'world8'},{tmp_path / 'best'}" in words


def test_the_summary_line_names_the_worst_condition_only_when_one_lowers_accuracy():
    from musclevision.models.report import summary_line

    evaluation = {"stage": "val", "clip": {"acc": 0.9, "bacc": 0.9, "count": 10},
                  "stress": {"worst": {"condition": "turned 45°", "clip_acc": 0.9, "clip_drop": 0.0}}}  # fmt: skip
    assert summary_line(evaluation).endswith("stress: no condition lowers clip accuracy")
    evaluation["stress"]["worst"] = {"condition": "mirrored", "clip_acc": 0.85, "clip_drop": 0.05}
    assert summary_line(evaluation).endswith("stress: worst 'mirrored' clip 85.0% (-5.0 points)")


def test_a_cross_validation_names_the_same_worst_condition_as_its_runs_would():
    """No condition loses a clip: the worst is the one that loses most windows (as stress_summary picks it)."""
    from pathlib import Path

    stress = {"turned 45°": {"clip_drop": 0.0, "window_drop": 0.0}, "camera 25° higher": {"clip_drop": 0.0, "window_drop": 0.03}}
    runs = [compare.Run(Path(str(f)), {}, {"window": {"acc": 0.9, "bacc": 0.9}, "stress": stress}) for f in (0, 1)]
    assert compare.crossval_summary("x", runs)["stress"]["worst"]["condition"] == "camera 25° higher"
