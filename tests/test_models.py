"""The sequence models: the paper's parameter count, Keras masking and recurrent dropout, features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musclevision.models.classifier import build_classifier
from musclevision.models.features import LandmarkFeatures
from musclevision.models.rnn import LSTMRecurrence, MaskedRNN, compact

PAPER_NET = {"arch": "lstm", "features": {"coords": "raw", "velocity": False, "visibility": True},
             "hidden_size": 64, "num_layers": 2, "recurrent_dropout": 0.3}  # fmt: skip


def landmarks(batch=4, steps=12, seed=0) -> torch.Tensor:
    return torch.rand(batch, steps, 33, 4, generator=torch.Generator().manual_seed(seed))


def test_paper_lstm_has_exactly_83716_parameters_for_4_classes():
    net = build_classifier(4, **PAPER_NET)
    assert net.features.out_features == 132
    assert sum(p.numel() for p in net.parameters()) == 83_716


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_masked_steps_keep_the_state(arch):
    """Frames without a person (NaN) must leave the recurrent state untouched, as Keras masking does."""
    net = build_classifier(3, arch, {"coords": "normalized", "velocity": False}, hidden_size=16).eval()
    x = landmarks(1, 10)
    gap = torch.full((1, 4, 33, 4), float("nan"))
    with_gap = torch.cat([x[:, :3], gap, x[:, 3:], gap[:, :2]], dim=1)
    with torch.no_grad():
        assert torch.allclose(net(x), net(with_gap), atol=1e-6)
        # and a masked step is not the same as a zero frame: the mask really is honoured
        assert not torch.allclose(net(x), net(torch.cat([x[:, :3], torch.zeros(1, 4, 33, 4), x[:, 3:]], 1)), atol=1e-4)


def test_window_without_any_person_gives_the_initial_state():
    rnn = MaskedRNN(5, 8).eval()
    out = rnn(torch.randn(2, 6, 5), torch.zeros(2, 6, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(2, 8))


def test_compaction_moves_valid_steps_to_the_front_in_order():
    x = torch.arange(6.0).view(1, 6, 1)
    valid = torch.tensor([[False, True, False, True, True, False]])
    packed, lengths = compact(x, valid)
    assert lengths.tolist() == [3]
    assert packed[0, :3, 0].tolist() == [1.0, 3.0, 4.0]


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_training_loop_matches_fused_kernel_without_dropout(arch):
    """The explicit step loop (recurrent dropout) and the fused kernel (eval/export) are the same maths."""
    net = build_classifier(3, arch, {"coords": "raw"}, hidden_size=12, recurrent_dropout=1e-12)
    x = landmarks(3, 9)
    x[0, 2:4] = float("nan")
    net.train()
    loop = net(x)
    loop_grads = torch.autograd.grad(loop.sum(), list(net.parameters()))
    net.eval()
    fused = net(x)
    fused_grads = torch.autograd.grad(fused.sum(), list(net.parameters()))
    assert torch.allclose(loop, fused, atol=1e-5)
    for a, b in zip(loop_grads, fused_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4)


def test_hand_written_lstm_backward_is_exact():
    steps, batch, hidden = 5, 3, 4
    gen = torch.Generator().manual_seed(1)
    x_proj = torch.randn(steps, 4, batch, hidden, dtype=torch.double, generator=gen, requires_grad=True)
    w_hh = (0.5 * torch.randn(4, hidden, hidden, dtype=torch.double, generator=gen)).requires_grad_()
    masks = torch.bernoulli(torch.full((4, batch, hidden), 0.7, dtype=torch.double), generator=gen) / 0.7
    assert torch.autograd.gradcheck(lambda a, b: LSTMRecurrence.apply(a, b, masks), (x_proj, w_hh))


def test_recurrent_dropout_is_fixed_per_sequence_and_random_between_calls():
    rnn = MaskedRNN(6, 32, num_layers=1, recurrent_dropout=0.5).train()
    x = torch.randn(2, 7, 6)
    valid = torch.ones(2, 7, dtype=torch.bool)
    torch.manual_seed(0)
    a = rnn(x, valid)
    torch.manual_seed(0)
    b = rnn(x, valid)
    c = rnn(x, valid)
    assert torch.equal(a, b)  # seeded: reproducible
    assert not torch.allclose(a, c)  # a new mask per call: it is really dropping
    rnn.eval()
    assert torch.equal(rnn(x, valid), rnn(x, valid))  # no dropout at evaluation


def test_normalized_features_ignore_where_the_person_stands_and_their_size():
    feats = LandmarkFeatures("normalized", velocity=True)
    x = landmarks(2, 5)
    moved = x.clone()
    moved[..., :2] = x[..., :2] * 0.5 + 0.2
    moved[..., 2] = x[..., 2] * 0.5
    a, _ = feats(x)
    b, _ = feats(moved)
    assert torch.allclose(a, b, atol=1e-4)


def test_velocity_is_zero_next_to_a_missing_frame():
    feats = LandmarkFeatures("raw", velocity=True, visibility=False)
    x = landmarks(1, 5)
    x[0, 2] = float("nan")
    f, valid = feats(x)
    velocity = f[0, :, 99:]
    assert valid[0].tolist() == [True, True, False, True, True]
    assert torch.all(velocity[0] == 0) and torch.all(velocity[3] == 0)  # first frame, frame after the gap
    assert torch.any(velocity[1] != 0) and torch.any(velocity[4] != 0)


def test_world_features_need_the_world_input():
    feats = LandmarkFeatures(["normalized", "world"], angles="world")
    with pytest.raises(ValueError, match="world"):
        feats(landmarks(1, 3))
    out, _ = feats(landmarks(1, 3), torch.rand(1, 3, 33, 3))
    assert out.shape == (1, 3, feats.out_features)


def test_joint_angles_do_not_change_when_the_body_is_turned():
    feats = LandmarkFeatures("world", visibility=False, angles="world")
    world = torch.randn(1, 4, 33, 3)
    turn = torch.tensor(np.deg2rad(40.0), dtype=torch.float32)
    rot = torch.tensor([[torch.cos(turn), 0, torch.sin(turn)], [0, 1, 0], [-torch.sin(turn), 0, torch.cos(turn)]])
    a, _ = feats(landmarks(1, 4), world)
    b, _ = feats(landmarks(1, 4), world @ rot.T)
    assert torch.allclose(a[..., -10:], b[..., -10:], atol=1e-5)


def test_tcn_ignores_padding_after_the_clip():
    """Causal convolutions + a masked mean: NaN padding at the end cannot change the prediction."""
    net = build_classifier(3, "tcn", {"coords": "normalized"}, hidden_size=16, levels=2).eval()
    x = landmarks(1, 8)
    padded = torch.cat([x, torch.full((1, 5, 33, 4), float("nan"))], dim=1)
    with torch.no_grad():
        assert torch.allclose(net(x), net(padded), atol=1e-6)
        assert not torch.allclose(net(x), net(x.flip(1)), atol=1e-4)


def test_unknown_architecture_and_feature_names_are_refused():
    with pytest.raises(ValueError, match="arch"):
        build_classifier(3, "transformer")
    with pytest.raises(ValueError, match="coords"):
        LandmarkFeatures("pixels")


def test_clip_metrics_average_window_probabilities_and_count_clips_without_a_window_as_wrong():
    from musclevision.models.metrics import EvalCollector

    collector = EvalCollector(num_classes=3)
    # clip 0 (label 0): windows say 0 (0.9) and 1 (0.6) -> mean favours 0, right; clip 2 (label 1): right.
    # clip 1 (label 0) has no usable window: it must still count, as a miss.
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.4, 0.6, 0.0], [0.1, 0.8, 0.1]])
    collector.update(probs, torch.tensor([0, 0, 1]), torch.tensor([0, 0, 2]))
    result = collector.compute(clip_labels=torch.tensor([0, 0, 1]))
    assert result["window"]["acc"] == pytest.approx(2 / 3) and result["window"]["count"] == 3
    clip = result["clip"]
    assert clip["count"] == 3 and clip["undecided"] == 1
    assert clip["acc"] == pytest.approx(2 / 3)
    assert clip["per_class"] == pytest.approx([0.5, 1.0, None])  # class 2 has no clip: no number, not 0
    assert clip["bacc"] == pytest.approx(0.75)  # mean over the classes present
    assert clip["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]  # the undecided clip is in no cell
    per_clip = result["per_clip"]
    assert dict(zip(per_clip["clip"], per_clip["predicted"])) == {0: 0, 1: None, 2: 1}


def test_a_leg_hardly_seen_over_the_window_counts_as_not_seen():
    """hide_unseen: a leg whose mean visibility over the window's frames with a person is below the threshold moves to
    the hip midpoint (visibility 0, world at the origin); the other leg and every other landmark stay as they were."""
    from musclevision.pose.geometry import hide_unseen, hip_centre
    from musclevision.pose.skeleton import BODY_PARTS

    x, world = landmarks(2, 6, seed=3), torch.randn(2, 6, 33, 3)
    x[..., 3] = 0.9
    left = list(BODY_PARTS["left leg"])
    x[0, :, left, 3] = 0.2  # window 0: the left leg guessed all along
    x[1, :, left, 3] = 0.55  # window 1: seen, barely, in its frames with a person ...
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[1, 5] = False  # ... and a frame without one (zeroed: visibility 0) does not count, or the mean would be 0.46
    x[1, 5], world[1, 5] = 0.0, 0.0
    got, got_world = hide_unseen(x, world, valid, 0.5)
    hips = hip_centre(x[0, :, :, :3])
    assert torch.allclose(got[0][:, left, :3], hips[:, None, :].expand(6, len(left), 3))
    assert torch.all(got[0][:, left, 3] == 0) and torch.all(got_world[0][:, left] == 0)
    others = [i for i in range(33) if i not in left]
    assert torch.equal(got[0][:, others], x[0][:, others]) and torch.equal(got_world[0][:, others], world[0][:, others])
    assert torch.equal(got[1], x[1]) and torch.equal(got_world[1], world[1])


def test_hiding_unseen_legs_changes_nothing_where_both_legs_are_seen_and_keeps_the_view_invariance():
    base = dict(coords="canonical", velocity=True, visibility=False, angles="world")
    x, world = landmarks(2, 6, seed=4), torch.randn(2, 6, 33, 3)
    x[..., 3] = 0.8
    a, _ = LandmarkFeatures(**base)(x, world)
    b, _ = LandmarkFeatures(**base, hide_unseen=0.5)(x, world)
    assert torch.equal(a, b)
    x[:, :, [26, 28, 30, 32], 3] = 0.1  # the right leg not seen: hidden, and features differ
    feats = LandmarkFeatures(**base, hide_unseen=0.5)
    c, _ = feats(x, world)
    assert not torch.allclose(a, c)
    turn = torch.tensor(np.deg2rad(75.0), dtype=torch.float32)
    rot = torch.tensor([[torch.cos(turn), 0, torch.sin(turn)], [0, 1, 0], [-torch.sin(turn), 0, torch.cos(turn)]])
    d, _ = feats(x, world @ rot.T)
    assert torch.allclose(c, d, atol=1e-5)
    with pytest.raises(ValueError, match="hide_unseen"):
        LandmarkFeatures(**base, hide_unseen=1.5)


def test_hiding_unseen_legs_exports_to_onnx_with_parity(tmp_path):
    from musclevision.export.onnx_model import ProbabilityGraph, check_parity, export_onnx

    net = build_classifier(5, "lstm", {"coords": "canonical", "angles": "world", "velocity": True, "visibility": False,
                                       "hide_unseen": 0.5}, hidden_size=8).eval()  # fmt: skip
    image, world = landmarks(8, 8, seed=5), torch.randn(8, 8, 33, 3)
    image[:4, :, [25, 27, 29, 31], 3] = 0.1  # half the windows with the left leg unseen
    image[2, 1:3] = float("nan")
    export_onnx(ProbabilityGraph(net), tmp_path / "hide.onnx", 8)
    check_parity(ProbabilityGraph(net), tmp_path / "hide.onnx", image.numpy(), world.numpy(), tolerance=1e-5)


def test_scene_motion_tells_still_hands_under_a_moving_body_from_moving_hands_under_a_still_body():
    """scene_motion: each point's place in the image against its own window mean, in image torso lengths. It does not
    change with where the person stands, the zoom or a mirror, and it is zero for a body that holds still; a push-up
    (hands still, body moving) and a bench press (body still, hands moving) with the same hip-centred pose differ."""
    from musclevision.pose.geometry import SCENE_POINTS, scene_motion
    from musclevision.pose.skeleton import landmark

    steps = 8
    pose = landmarks(1, 1, seed=6).repeat(1, steps, 1, 1)  # one pose held still
    pose[..., 3] = 1.0
    valid = torch.ones(1, steps, dtype=torch.bool)
    assert torch.allclose(scene_motion(pose[..., :2], valid), torch.zeros(1, steps, 2 * len(SCENE_POINTS)), atol=1e-6)

    bob = 0.05 * torch.sin(torch.linspace(0, 2 * np.pi, steps))  # [T] up and down
    wrists = [landmark("left_wrist"), landmark("right_wrist")]
    body = [i for i in range(33) if i not in wrists]
    pushup, bench = pose.clone(), pose.clone()
    pushup[0, :, body, 1] += bob[:, None]  # the body moves, the hands stay on the floor
    bench[0, :, wrists, 1] += bob[:, None]  # the hands move, the body stays on the bench
    a, b = scene_motion(pushup[..., :2], valid), scene_motion(bench[..., :2], valid)
    shoulders_dy, wrists_dy = 1, 5  # (|dx|, dy) per point: shoulders, hips, wrists, ankles
    assert a[..., shoulders_dy].abs().max() > 0.05 and torch.allclose(a[..., wrists_dy], torch.zeros(1, steps), atol=1e-6)
    assert b[..., wrists_dy].abs().max() > 0.05 and torch.allclose(b[..., shoulders_dy], torch.zeros(1, steps), atol=1e-6)

    feats = LandmarkFeatures(coords="normalized", velocity=False, visibility=False, scene_motion=True)
    ref, _ = feats(pushup)
    moved = pushup.clone()
    moved[..., 0] = 0.3 + 0.5 * (moved[..., 0] - 0.5)  # elsewhere in the frame and zoomed out
    moved[..., 1] = 0.6 + 0.5 * (moved[..., 1] - 0.5)
    moved[..., 2] *= 0.5
    mirrored = pushup.clone()[..., _mirror_index(), :]
    mirrored[..., 0] = 1.0 - mirrored[..., 0]
    assert ref.shape[-1] == feats.out_features == 33 * 3 + 2 * len(SCENE_POINTS)
    assert torch.allclose(feats(moved)[0], ref, atol=1e-5)
    scene = slice(33 * 3, None)  # (the hip-centred image coordinates themselves change sign in x when mirrored)
    assert torch.allclose(feats(mirrored)[0][..., scene], ref[..., scene], atol=1e-5)
    with pytest.raises(ValueError, match="scene_motion"):  # "false" from a YAML string must not read as true
        LandmarkFeatures(coords="normalized", scene_motion="false")


def _mirror_index():
    from musclevision.pose.skeleton import MIRROR

    return list(MIRROR)


def test_scene_motion_ignores_frames_without_a_person_and_exports_to_onnx_with_parity(tmp_path):

    feats = LandmarkFeatures(coords="canonical", velocity=True, visibility=False, angles="world", scene_motion=True)
    x, world = landmarks(2, 8, seed=7), torch.randn(2, 8, 33, 3)
    gap = x.clone()
    gap[:, 3], world_gap = float("nan"), world.clone()
    a, valid = feats(x[:, [0, 1, 2, 4, 5, 6, 7]], world[:, [0, 1, 2, 4, 5, 6, 7]])
    b, valid_gap = feats(gap, world_gap)
    assert not valid_gap[:, 3].any() and torch.equal(b[:, 3], torch.zeros_like(b[:, 3]))
    at = feats.out_features - feats.SCENE  # the scene features of the other frames: as if the gap were not there
    assert torch.allclose(b[:, [0, 1, 2, 4, 5, 6, 7], at:], a[..., at:], atol=1e-6)

    exports_with_parity(tmp_path, {"scene_motion": True}, seed=8)


def exports_with_parity(tmp_path, option: dict, seed: int) -> None:
    """A small LSTM on body-centred features plus ``option`` exports to ONNX and matches PyTorch (a gap included)."""
    from musclevision.export.onnx_model import ProbabilityGraph, check_parity, export_onnx

    features = {"coords": "canonical", "angles": "world", "velocity": True, "visibility": False, **option}
    net = build_classifier(5, "lstm", features, hidden_size=8).eval()
    image, world = landmarks(8, 8, seed=seed), torch.randn(8, 8, 33, 3)
    image[2, 1:3] = float("nan")
    export_onnx(ProbabilityGraph(net), tmp_path / "option.onnx", 8)
    check_parity(ProbabilityGraph(net), tmp_path / "option.onnx", image.numpy(), world.numpy(), tolerance=1e-5)


def test_orientation_tells_facing_the_floor_from_facing_up_and_is_the_same_from_any_side(tmp_path):
    """orientation: the trunk's line and the chest's normal against the camera's up/down. A push-up faces the floor, a
    bench press faces up, a squat stands; the values do not change when the person is turned about the vertical axis,
    mirrored or scaled, and a model with them exports to ONNX with parity."""
    from musclevision.data.synthetic import synthesize_dataset
    from musclevision.pose import transforms
    from musclevision.pose.geometry import orientation

    clips = {c.label: c for c in synthesize_dataset(["BenchPress", "BodyWeightSquats", "PushUps"], groups=1, seed=5)}
    seen = {k: c.world[~np.isnan(c.world).any((1, 2))] for k, c in clips.items()}  # frames with a person
    trunk = {k: orientation(torch.tensor(w)).median(0).values for k, w in seen.items()}  # [torso y, normal y]
    assert trunk["PushUps"][1] > 0.5 and trunk["BenchPress"][1] < -0.3 and trunk["BodyWeightSquats"][0] < -0.5

    push = clips["PushUps"]
    image, world = push.image[None], push.world[None]
    ref = orientation(torch.tensor(world))
    aspect = np.array([push.width / push.height])
    for turned in (transforms.rotate_yaw(image, world, aspect, np.array([a]))[1] for a in (0.4, 1.9, -2.8)):
        assert torch.allclose(orientation(torch.tensor(turned)), ref, atol=1e-5, equal_nan=True)
    assert torch.allclose(orientation(torch.tensor(transforms.mirror(image, world)[1])), ref, atol=1e-5, equal_nan=True)
    assert torch.allclose(orientation(torch.tensor(world * 1.7)), ref, atol=1e-5, equal_nan=True)

    feats = LandmarkFeatures(coords="canonical", velocity=False, visibility=False, orientation=True)
    assert feats.out_features == 33 * 3 + 2 and feats(torch.tensor(image), torch.tensor(world))[0].shape[-1] == 33 * 3 + 2
    with pytest.raises(ValueError, match="orientation"):  # "false" from a YAML string must not read as true
        LandmarkFeatures(coords="canonical", orientation="false")
    exports_with_parity(tmp_path, {"orientation": True}, seed=9)


def test_a_network_that_needs_a_fixed_number_of_frames_fails_parity_in_one_named_case(tmp_path):
    """A backbone that flattens the window (an MLP over 8 frames) exports, but cannot take the page's other inputs:
    the parity check names the case and the rule, instead of an onnxruntime traceback."""
    from musclevision.export.onnx_model import ProbabilityGraph, check_parity, export_onnx

    class FixedWindow(torch.nn.Module):
        uses_world = False

        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(8 * 33 * 4, 5)

        def forward(self, landmarks, world=None):  # [B, 8, 33, 4] only
            return self.head(torch.nan_to_num(landmarks).flatten(1))

    graph = ProbabilityGraph(FixedWindow())
    export_onnx(graph, tmp_path / "fixed.onnx", 8)
    image = landmarks(8, 8, seed=3).numpy()
    with pytest.raises(RuntimeError, match=r"parity case 'single frame' \(8 windows x 1 frames\) failed: .* must take any "
                                           "number of windows and of frames"):  # fmt: skip
        check_parity(graph, tmp_path / "fixed.onnx", image, np.zeros((8, 8, 33, 3), np.float32), tolerance=1e-5)


def test_the_training_summary_lists_parameters_without_empty_columns(monkeypatch):
    """Lightning's summary printed 'Mode: train' and 'FLOPs: 0' for every module, 'Total FLOPs: 0' at the end."""
    from rich.console import Console

    from musclevision.models.summary import ParamsSummary

    data = [(" ", ["0", "1"]), ("Name", ["net", "net.head"]), ("Type", ["SequenceClassifier", "Linear"]),
            ("Params", ["109 K", "325"]), ("Mode", ["train", "train"]), ("FLOPs", ["0", "0"])]  # fmt: skip
    console = Console(record=True, width=120)
    monkeypatch.setattr("rich.get_console", lambda: console)
    ParamsSummary.summarize(data, 109_125, 109_125, 0.436, {"train": 10, "eval": 0}, 0)
    text = console.export_text()
    assert "SequenceClassifier" in text and "109 K" in text and "parameters: 109 K = 0.436 MB" in text, text
    assert "FLOPs" not in text and "Mode" not in text and "train" not in text, text
