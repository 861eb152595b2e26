"""What Python and the page must agree on, checked on the same inputs: the skeleton, the model card's
schema (which cards are accepted), and how a window is resampled from timestamped frames.

The page's side runs in Node 20 (the page's own ES modules, no browser)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from helpers import run_node
from musclevision.card import CARD_FORMAT, CardError, card_schema, load_card, validate_card
from musclevision.data.clips import ClipData
from musclevision.data.windows import FrameStore, window_positions
from musclevision.pose.skeleton import BONES, JOINTS, LANDMARK_NAMES, MIRROR, NUM_LANDMARKS, PARENT, SIDE, skeleton_dict
from musclevision.web.assets import CONTRACT_MODULE, contract_module

JS = CONTRACT_MODULE.parent.parent  # web/static/js


def test_generated_page_module_is_current():
    assert CONTRACT_MODULE.is_file(), "run `make setup`: it writes the page's contract module"
    assert CONTRACT_MODULE.read_text() == contract_module(), "stale: run `make setup` after changing pose/ or card.py"


def test_page_skeleton_is_the_python_skeleton():
    got = run_node(f'import {{ SKELETON }} from "{JS}/generated/contract.js"; out(SKELETON);')
    assert got == json.loads(json.dumps(skeleton_dict()))
    assert got["names"] == list(LANDMARK_NAMES) and got["count"] == NUM_LANDMARKS == 33


def test_the_page_draws_the_bones_mediapipe_connects():
    """draw.js draws SKELETON.bones: MediaPipe's own POSE_CONNECTIONS (of the pinned tasks-vision), pair for pair."""
    from musclevision.paths import project_root

    bundle = project_root() / "node_modules" / "@mediapipe" / "tasks-vision" / "vision_bundle.mjs"
    assert bundle.is_file(), "run `make setup`: it installs the pinned npm packages"
    got = run_node(f'const v = await import("{bundle}"); out(v.PoseLandmarker.POSE_CONNECTIONS.map((c) => [c.start, c.end]));')
    assert [tuple(c) for c in got] == list(BONES)


def test_skeleton_tables_are_consistent():
    assert all(MIRROR[MIRROR[i]] == i for i in range(NUM_LANDMARKS))
    assert all(SIDE[MIRROR[i]] == -SIDE[i] and (SIDE[i] == 0) == (MIRROR[i] == i) for i in range(NUM_LANDMARKS))
    mirrored = {tuple(sorted((MIRROR[a], MIRROR[b]))) for a, b in BONES}
    assert mirrored == {tuple(sorted(b)) for b in BONES}, "the mirror image of a bone is a bone"
    for name, (a, b, c) in JOINTS.items():
        assert LANDMARK_NAMES[b] == name, name  # the angle sits at the joint it is named after
        mirror_name = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert JOINTS[mirror_name] == (MIRROR[a], MIRROR[b], MIRROR[c])
    # every landmark reaches the root (the left hip) through PARENT, without cycles
    for i in range(NUM_LANDMARKS):
        seen, j = set(), i
        while PARENT[j] != j:
            assert j not in seen
            seen.add(j)
            j = PARENT[j]
        assert j == LANDMARK_NAMES.index("left_hip")


def valid_card() -> dict:
    return {
        "format": CARD_FORMAT,
        "name": "best",
        "onnx": "best.onnx",
        "classes": ["BenchPress", "BodyWeightSquats"],
        "inputs": [{"name": "landmarks", "shape": ["batch", "time", 33, 4], "dtype": "float32", "missing": "nan"}],
        "outputs": [{"name": "probabilities", "shape": ["batch", 2], "dtype": "float32"}],
        "opset": 17,
        "window_policy": {"fps": 25, "window": 8, "min_detected": 4, "smoothing_s": 0.3, "threshold": 0.6},
        "pose_model": {"variant": "full", "bundle": "pose_landmarker_full.task", "bundle_sha256": "ab" * 32, "extra": 1},
        "training": {"data_kind": "real", "checkpoint": "logs/run/checkpoints/last.ckpt", "epochs": 15},
        "metrics": {"window": {"acc": 0.9}},
    }


def _set(path: str, value):
    def change(card):
        *parents, last = path.split(".")
        node = card
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return card

    return change


DELETE = object()
MUTATIONS = {
    "valid as it is": lambda c: c,
    "calibration block": _set("calibration", {"temperature": 1.4, "ece_before": 0.08, "ece_after": 0.02}),
    "synthetic data with its warning": _set("training", {"data_kind": "synthetic", "warning": "synthetic"}),
    "world input too": _set("inputs", [valid_card()["inputs"][0], {"name": "world", "shape": [], "dtype": "float32"}]),
    "integer fps": _set("window_policy.fps", 30),
    "ensemble of two": _set("training.members", [{"checkpoint": "a/last.ckpt", "net": {}}, {"checkpoint": None}]),
    "ensemble of one": _set("training.members", [{"checkpoint": "a/last.ckpt"}]),
    "ensemble member absolute": _set("training.members", [{"checkpoint": "/a/last.ckpt"}, {"checkpoint": "b.ckpt"}]),
    "old format": _set("format", "musclevision-model-card/1"),
    "foreign format": _set("format", "other"),
    "no classes": _set("classes", []),
    "duplicate classes": _set("classes", ["A", "A"]),
    "empty class name": _set("classes", ["A", ""]),
    "class not a string": _set("classes", ["A", 3]),
    "onnx with a folder": _set("onnx", "../x.onnx"),
    "onnx absolute": _set("onnx", "/abs/x.onnx"),
    "onnx not .onnx": _set("onnx", "x.bin"),
    "onnx with a newline": _set("onnx", "x.onnx\n"),
    "name with a slash": _set("name", "a/b"),
    "window 0": _set("window_policy.window", 0),
    "window not integer": _set("window_policy.window", 8.5),
    "window a string": _set("window_policy.window", "8"),
    "window true": _set("window_policy.window", True),
    "fps 0": _set("window_policy.fps", 0),
    "fps a string": _set("window_policy.fps", "25"),
    "threshold 1": _set("window_policy.threshold", 1),
    "threshold negative": _set("window_policy.threshold", -0.1),
    "smoothing negative": _set("window_policy.smoothing_s", -1),
    "min_detected 0": _set("window_policy.min_detected", 0),
    "policy without threshold": _set("window_policy.threshold", DELETE),
    "policy with a misspelt key": _set("window_policy.treshold", 0.5),
    "no window policy": _set("window_policy", DELETE),
    "misspelt top-level key": _set("onnx_file", "x.onnx"),
    "no landmarks input": _set("inputs", [{"name": "world", "shape": [], "dtype": "float32"}]),
    "unknown input": _set("inputs.0.name", "pixels"),
    "three inputs": _set("inputs", [valid_card()["inputs"][0]] * 3),
    "float64 input": _set("inputs.0.dtype", "float64"),
    "bundle path": _set("pose_model.bundle", "../../etc/passwd"),
    "bundle hash short": _set("pose_model.bundle_sha256", "abc"),
    "unknown variant": _set("pose_model.variant", "huge"),
    "num_poses 0": _set("pose_model.num_poses", 0),
    "data kind unknown": _set("training.data_kind", "imagined"),
    "absolute checkpoint": _set("training.checkpoint", "/home/me/last.ckpt"),
    "windows checkpoint": _set("training.checkpoint", "C:\\runs\\last.ckpt"),
    "no training block": _set("training", DELETE),
    "temperature 0": _set("calibration", {"temperature": 0}),
    "metrics a list": _set("metrics", [1, 2]),
    "not an object": lambda c: [c],
}


def test_python_and_the_page_accept_and_refuse_the_same_cards():
    cards = {name: change(copy.deepcopy(valid_card())) for name, change in MUTATIONS.items()}
    python = {}
    for name, card in cards.items():
        try:
            validate_card(card)
            python[name] = None
        except CardError as exc:
            python[name] = str(exc)
    page = run_node(
        f'import {{ validateCard }} from "{JS}/classifier.js";\n'
        "const result = {};\n"
        "for (const [name, card] of Object.entries(input)) {\n"
        "  try { validateCard(card); result[name] = null; } catch (e) { result[name] = e.message; }\n"
        "}\nout(result);",
        cards,
    )
    accepted = [n for n, e in python.items() if e is None]
    assert accepted == [
        "valid as it is",
        "calibration block",
        "synthetic data with its warning",
        "world input too",
        "integer fps",
        "ensemble of two",
    ]
    disagree = {n: (python[n], page[n]) for n in cards if (python[n] is None) != (page[n] is None)}
    assert not disagree, disagree
    assert "re-export" in python["old format"] and "re-export" in page["old format"]
    # both name where the problem is
    assert "window_policy" in python["window 0"] and "window_policy.window" in page["window 0"]


def test_a_card_path_that_is_the_onnx_model_says_which_file_to_give(tmp_path):
    model = tmp_path / "best.onnx"
    model.write_bytes(b"\x08\x07\x12\x07pytorch\xff\xfe")  # what an ONNX file starts like: not text
    with pytest.raises(CardError, match=r"best.onnx is the ONNX model, not its model card: give .*best.json"):
        load_card(model)
    with pytest.raises(CardError, match="cannot be read as JSON"):
        load_card(model.rename(tmp_path / "best.bin"))


def test_page_validator_handles_every_keyword_of_the_schema():
    keywords = set(run_node(f'import {{ KEYWORDS }} from "{JS}/schema.js"; out([...KEYWORDS]);'))
    used = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                used.add(key)
                for child in value.values() if key in ("properties", "$defs") else [value]:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(card_schema())
    assert used <= keywords, f"teach web/static/js/schema.js these keywords: {sorted(used - keywords)}"


def test_an_absent_pose_setting_means_the_same_to_the_card_the_cache_the_replay_and_the_page():
    """One definition (PoseModel.absent(), the card schema's defaults): the page's poseOptions falls back to the same
    values, replay reads a card that records none of the untyped settings with them, and a cache key leaves a setting
    out when it has that value."""
    from musclevision.card import PoseModel
    from musclevision.extract.landmarker import OFF_WHEN_ABSENT
    from musclevision.replay.cli import pose_options

    absent = PoseModel.absent()
    assert absent == {"num_poses": 1, "people_check_s": 0, "zoom_out": 1, "min_pose_detection_confidence": 0.5,
                      "min_pose_presence_confidence": 0.5, "min_tracking_confidence": 0.5, "rotations": [],
                      "retry_every": 1, "selector": None}  # fmt: skip
    page = run_node(f'import {{ poseOptions }} from "{JS}/pose.js"; out(poseOptions({{}}));')
    names = dict(minDetection="min_pose_detection_confidence", minPresence="min_pose_presence_confidence",
                 minTracking="min_tracking_confidence", rotations="rotations", retryEvery="retry_every",
                 zoomOut="zoom_out", numPoses="num_poses", peopleCheckS="people_check_s", selector="selector")  # fmt: skip
    assert {names[k]: v for k, v in page.items()} == absent
    bare = PoseModel.model_validate({"variant": "full", "bundle": "pose_landmarker_full.task", "bundle_sha256": "ab" * 32})
    replay = pose_options(bare)
    assert {k: replay[k] for k in absent if k in replay} == {k: v for k, v in absent.items() if k in replay}
    assert {k: absent[k] for k in OFF_WHEN_ABSENT} == OFF_WHEN_ABSENT
    assert bare.model_dump(exclude_none=True).keys() == set(PoseModel.model_fields), "untyped settings stay out of dumps"


@pytest.mark.parametrize("clip_fps, live", [(25.0, False), (30.0, False), (25.0, True)])
def test_page_and_training_resample_a_window_alike(clip_fps, live):
    """The same frames (NaN rows = no person) and timestamps: the page's FrameWindow and the training/evaluation
    windows (window_positions + FrameStore.gather) give the same window, for clips at another rate and for a live
    page whose frame times jitter."""
    rng = np.random.default_rng(1)
    frames, window, fps = 60, 8, 25.0
    image = rng.random((frames, 33, 4)).astype(np.float32)
    world = rng.random((frames, 33, 3)).astype(np.float32)
    image[[7, 20, 21, 40]] = np.nan
    world[[7, 20, 21, 40]] = np.nan
    if live:  # 12-40 frames/s, as a page on a busy laptop
        times = np.cumsum(rng.uniform(25, 80, frames))
    else:
        times = np.arange(frames) * 1000.0 / clip_fps
    store = FrameStore([ClipData("c", "A", "g", image, world, clip_fps, 320, 240)], ["A"])
    ends = list(range(30, frames))
    expected = []
    for end in ends:
        positions = window_positions(times[: end + 1], times[end], fps, window)
        img, wld = store.gather(np.array([0]), positions[None])
        expected.append([img[0].reshape(window, -1), wld[0].reshape(window, -1)])
    got = run_node(
        f'import {{ FrameWindow }} from "{JS}/classifier.js";\n'
        "const { image, world, times, ends, window, fps } = input;\n"
        "const w = new FrameWindow(window, true, fps);\n"
        "const buf = { image: new Float32Array(window * 132), world: new Float32Array(window * 99) };\n"
        "const result = [];\n"
        "for (let i = 0; i < times.length; i++) {\n"
        "  const present = image[i] !== null;\n"
        "  w.push(present ? Float32Array.from(image[i]) : null, present ? Float32Array.from(world[i]) : null, times[i]);\n"
        "  if (ends.includes(i)) { w.ordered(buf); result.push([Array.from(buf.image), Array.from(buf.world)]); }\n"
        "}\nout(result);",
        {
            "image": [None if np.isnan(f).any() else f.ravel().tolist() for f in image],
            "world": [None if np.isnan(f).any() else f.ravel().tolist() for f in world],
            "times": times.tolist(),
            "ends": ends,
            "window": window,
            "fps": fps,
        },
    )
    for (exp_img, exp_wld), (got_img, got_wld) in zip(expected, got, strict=True):
        got_img = np.array([np.nan if v is None else v for v in got_img], dtype=np.float32).reshape(window, -1)
        got_wld = np.array([np.nan if v is None else v for v in got_wld], dtype=np.float32).reshape(window, -1)
        np.testing.assert_allclose(got_img, exp_img, atol=1e-5)  # NaN where either has NaN: assert_allclose checks both
        np.testing.assert_allclose(got_wld, exp_wld, atol=1e-5)


def test_pose_defaults_are_the_same_in_the_extractor_and_both_configs(monkeypatch):
    """PoseSettings and the composed configs of the extractor (pose) and of training (data.source.pose) key one
    cache: they must agree (both configs take configs/pose/default.yaml)."""
    from dataclasses import asdict

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from musclevision.extract.landmarker import PoseSettings
    from musclevision.paths import config_dir

    monkeypatch.setenv("MUSCLEVISION_ROOT", str(config_dir().parent))
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(PoseSettings()).items()}
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        extract = OmegaConf.to_container(compose("extract").pose)
        source = OmegaConf.to_container(compose("train", overrides=["data=ucf101"]).data.source.pose)
    assert extract == source
    assert {k: defaults[k] for k in extract} == extract
    assert PoseSettings(**extract) == PoseSettings()


KEYED_POSE_OPTIONS = ("min_pose_detection_confidence", "min_pose_presence_confidence", "min_tracking_confidence",
                      "rotations", "retry_every", "zoom_out", "num_poses", "people_check_s")  # fmt: skip
