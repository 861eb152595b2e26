"""The graph network (models/gcn.py) and ensembles: skeleton graph, shapes, masking, invariance, ONNX parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musclevision.export.onnx_model import ProbabilityGraph, check_parity, export_onnx, onnx_probabilities
from musclevision.models.classifier import Ensemble, build_classifier
from musclevision.models.gcn import SkeletonStreams, hops_from_hips, skeleton_edges, skeleton_partitions
from musclevision.pose.skeleton import BONES, MIRROR, NUM_LANDMARKS, PARENT

GCN = {"arch": "gcn", "features": {"coords": "canonical"}, "hidden_size": 16, "blocks": 2, "stem_channels": 8, "refine_rank": 4}


def windows(batch=3, steps=8, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Plausible landmark windows: image landmarks in [0, 1] with visibility, world landmarks in metres."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, steps, 33, 4, generator=g), torch.rand(batch, steps, 33, 3, generator=g) - 0.5


def gcn(num_classes=5, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_classifier(num_classes, **{**GCN, **changes})
    with torch.no_grad():  # move the batch norms and the refinement gate off their initial values, as training would
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        for block in net.backbone.blocks:
            if block.graph.rank:
                block.graph.gate.fill_(0.5)
    return net.eval()


def test_skeleton_graph_joins_every_landmark_and_is_mirror_symmetric():
    edges = skeleton_edges()
    assert {tuple(sorted(b)) for b in BONES} <= set(edges)
    assert {tuple(sorted((MIRROR[a], MIRROR[b]))) for a, b in edges} == set(edges)
    hops = hops_from_hips(edges)  # raises if a landmark cannot be reached
    assert hops[23] == hops[24] == 0 and all(hops[i] == hops[MIRROR[i]] for i in range(NUM_LANDMARKS))
    partitions = skeleton_partitions()
    assert partitions.shape == (3, NUM_LANDMARKS, NUM_LANDMARKS)
    assert torch.allclose(partitions.sum((0, 1)), torch.ones(NUM_LANDMARKS))  # each landmark averages its neighbourhood
    assert (partitions > 0).sum(0).bool().diagonal().all()  # itself included


def test_streams_are_joints_bones_and_motion_between_frames_with_a_person():
    streams = SkeletonStreams("world", ["joint", "bone", "motion", "visibility"])
    image, world = windows(1, 6)
    image[0, 2] = float("nan")  # no person in frame 2
    x, valid = streams(image, world)
    assert x.shape == (1, 10, 6, 33) and streams.channels == [3, 3, 3, 1]
    assert valid.tolist() == [[True] * 5 + [False]]
    joint, bone, motion, visibility = x.split(streams.channels, 1)
    kept = [0, 1, 3, 4, 5]  # the frames with a person, gathered to the front
    expected = streams.coords.positions(image, world)[0][0, kept].permute(2, 0, 1)  # [3, 5, 33]
    assert torch.allclose(joint[0, :, :5], expected) and torch.equal(joint[0, :, 5], torch.zeros(3, 33))
    assert torch.allclose(bone, joint - joint[..., list(PARENT)])
    assert torch.equal(motion[0, :, 0], torch.zeros(3, 33)) and torch.equal(motion[0, :, 5], torch.zeros(3, 33))
    assert torch.allclose(motion[0, :, 1:5], expected[:, 1:] - expected[:, :-1])  # frame 3 minus frame 1: across the gap
    assert torch.allclose(visibility[0, 0, :5], image[0, kept, :, 3])


@pytest.mark.parametrize("steps", [1, 8, 24])
def test_graph_model_shapes_and_parameters(steps):
    net = gcn()
    image, world = windows(4, steps)
    assert net(image, world).shape == (4, 5)
    assert 5_000 < sum(p.numel() for p in net.parameters()) < 50_000
    assert build_classifier(5, "gcn").backbone.out_features == 32  # the defaults of model/gcn.yaml


@pytest.mark.parametrize("rank", [0, 4])
def test_a_masked_frame_changes_nothing(rank):
    """Frames without a person, wherever they are, give exactly what the window without them gives."""
    net = gcn(refine_rank=rank)
    image, world = windows(2, 8)
    gap = torch.full((2, 1, 33, 4), float("nan"))
    with torch.no_grad():
        reference = net(image, world)
        for at in (0, 3, 5, 8):
            with_gap = torch.cat([image[:, :at], gap, image[:, at:]], 1)
            garbage = torch.cat([world[:, :at], torch.randn(2, 1, 33, 3) * 100, world[:, at:]], 1)
            assert torch.allclose(net(with_gap, garbage), reference, atol=1e-5), at
        # one NaN landmark masks the whole frame, whatever the rest of it holds
        partial = image.clone()
        partial[:, 4, 7, 0] = float("nan")
        dropped = torch.cat([image[:, :4], image[:, 5:]], 1), torch.cat([world[:, :4], world[:, 5:]], 1)
        assert torch.allclose(net(partial, world), net(*dropped), atol=1e-5)
        # and a masked frame is not a zero frame: the mask really is honoured
        zeros = torch.cat([image[:, :3], torch.zeros(2, 1, 33, 4), image[:, 3:]], 1)
        assert not torch.allclose(net(zeros, torch.cat([world[:, :3], torch.zeros(2, 1, 33, 3), world[:, 3:]], 1)), reference)


def test_a_window_without_any_person_gives_the_head_bias():
    net = gcn()
    with torch.no_grad():
        logits = net(torch.full((2, 8, 33, 4), float("nan")), torch.full((2, 8, 33, 3), float("nan")))
    assert torch.isfinite(logits).all() and torch.allclose(logits, net.head.bias.expand(2, -1))


def test_body_centred_graph_model_does_not_see_the_view_about_the_vertical_axis():
    net = gcn()
    image, world = windows(2, 8)
    world[..., 23, :] = torch.tensor([0.1, 0.0, 0.02])  # a person: hips apart, shoulders above them
    world[..., 24, :] = torch.tensor([-0.1, 0.0, -0.02])
    angle = math.radians(70)
    turn = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    with torch.no_grad():
        assert torch.allclose(net(image, world), net(image, world @ turn.T), atol=1e-4)
        assert not torch.allclose(net(image, world), net(image, world.flip(1)), atol=1e-4)


def test_graph_model_options_are_checked():
    with pytest.raises(ValueError, match="streams"):
        build_classifier(5, "gcn", {"streams": ["joint", "speed"]})
    with pytest.raises(ValueError, match="features.velocity"):
        build_classifier(5, "gcn", {"coords": "world", "velocity": True})
    with pytest.raises(ValueError, match="hidden_size"):
        build_classifier(5, "gcn", hidden_size=0)


def test_graph_model_onnx_parity_with_dynamic_batch_and_time(tmp_path):
    net = gcn(refine_rank=4)
    image, world = windows(16, 8, seed=1)
    image[3, 2:5] = float("nan")
    export_onnx(ProbabilityGraph(net), tmp_path / "gcn.onnx", 8)
    report = check_parity(ProbabilityGraph(net), tmp_path / "gcn.onnx", image.numpy(), world.numpy(), tolerance=1e-5)
    assert set(report) >= {"real windows", "windows without a person", "single frame", "3x longer history"}


def test_ensemble_averages_its_members_probabilities_in_pytorch_and_onnx(tmp_path):
    lstm = build_classifier(5, "lstm", {"coords": "normalized"}, hidden_size=8).eval()
    graph = gcn()
    image, world = windows(6, 8, seed=2)
    image[1, 0] = float("nan")
    ensemble = Ensemble([lstm, graph])
    assert ensemble.uses_world  # the graph model reads the world landmarks, the LSTM does not
    with torch.no_grad():
        expected = (torch.softmax(lstm(image), -1) + torch.softmax(graph(image, world), -1)) / 2
        assert torch.allclose(ensemble.probabilities(image, world), expected, atol=1e-6)
        assert torch.allclose(torch.softmax(ensemble(image, world), -1), expected, atol=1e-6)
    export_onnx(ProbabilityGraph(ensemble), tmp_path / "pair.onnx", 8)
    got = onnx_probabilities(tmp_path / "pair.onnx", image.numpy(), world.numpy())
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    check_parity(ProbabilityGraph(ensemble), tmp_path / "pair.onnx", image.numpy(), world.numpy(), tolerance=1e-5)
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([lstm])
