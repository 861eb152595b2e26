"""The quick tier: the training pipeline in-process, configs composed with Hydra's compose API and ``train(cfg)``
called directly (lightning-hydra-template style), on small synthetic data. The console scripts end to end are
tests/test_train.py (integration tier)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from helpers import SMALL_SYNTHETIC
from musclevision.card import validate_card
from musclevision.evaluate import evaluate
from musclevision.export.exporter import export_checkpoint
from musclevision.models.module import load_checkpoint
from musclevision.models.stress import CONDITIONS
from musclevision.paths import config_dir, project_root
from musclevision.train import train

EXPERIMENTS = sorted(p.stem for p in (project_root() / "experiments").glob("*.yaml"))
MODELS = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))  # every architecture config, a new one too


def compose_run(config: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """What ``musclevision-<config> <overrides>`` would run with, its run folder ``output_dir``."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=config, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.mode = RunMode.RUN
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra  # as in a real run: the task's config has no hydra node (${hydra:...} reads HydraConfig)
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_one_batch_of_each_stage(experiment, tmp_path):
    cfg = compose_run("train", [f"experiment={experiment}", *SMALL_SYNTHETIC, "debug=fast_dev_run", "logger=none"], tmp_path)
    assert train(cfg) == {}  # one batch of fit and validation each, no report


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_trains_masks_and_exports_with_parity(model, tmp_path):
    """configs/model/<name>.yaml: one batch of each stage, frames without a person change nothing, and its graph
    exports to ONNX and gives PyTorch's probabilities for every input the page sends (1 to many frames)."""
    from musclevision.export.onnx_model import ProbabilityGraph, check_parity, export_onnx

    cfg = compose_run("train", [f"model={model}", *SMALL_SYNTHETIC, "debug=fast_dev_run", "logger=none"], tmp_path)
    assert train(cfg) == {}
    net = instantiate(cfg.model).net.eval()
    rng = np.random.default_rng(0)
    image = rng.random((6, cfg.data.window, 33, 4), dtype=np.float32)
    world = rng.normal(0, 0.3, (6, cfg.data.window, 33, 3)).astype(np.float32)
    gap_image, gap_world = image.copy(), world.copy()
    gap_image[:, :2], gap_world[:, :2] = np.nan, np.nan  # two frames without a person, first in the window
    with torch.no_grad():
        short = net(torch.from_numpy(image[:, 2:]), torch.from_numpy(world[:, 2:]))
        gapped = net(torch.from_numpy(gap_image), torch.from_numpy(gap_world))
    # masked: as if those frames were not there (the TCN's convolutions still see the gap's zeros: nearly)
    assert torch.allclose(short, gapped, atol=0.1 if model == "tcn" else 1e-4), (model, (short - gapped).abs().max())
    export_onnx(ProbabilityGraph(net), tmp_path / "m.onnx", cfg.data.window)
    check_parity(ProbabilityGraph(net), tmp_path / "m.onnx", image, world, tolerance=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Two epochs on small synthetic data, CSV logging: the run folder. Its window policy is not the data config's
    default (8 slots at 12.5 fps, 3 with a person): whatever reads the checkpoint must take the policy from it."""
    run = tmp_path_factory.mktemp("run")
    policy = ["data.fps=12.5", "data.min_detected=3"]
    cfg = compose_run("train", [*SMALL_SYNTHETIC, *policy, "trainer.max_epochs=2", "logger=csv"], run)
    evaluation = train(cfg)
    assert evaluation["checkpoint"] == str(run / "checkpoints" / "last.ckpt")  # eval_ckpt=last: no pick on val
    return run


def test_the_report_scores_every_held_out_window_and_clip(trained):
    report = json.loads((trained / "val_metrics.json").read_text())
    model = load_checkpoint(trained / "checkpoints" / "last.ckpt")
    data = instantiate(model.run_config["data"])  # the data and split the run trained and reported on
    data.setup()
    windows = data.eval_loaders("val")[0].dataset
    assert report["split"] == data.split.description
    assert report["window"]["count"] == len(windows) and report["clip"]["count"] == len(windows.clip_names)
    for level in ("window", "clip"):
        confusion = np.array(report[level]["confusion"])
        assert confusion.sum() + report[level]["undecided"] == report[level]["count"]
        assert report[level]["acc"] == pytest.approx(np.trace(confusion) / report[level]["count"])
    assert sorted(report["per_clip"]["video_id"]) == sorted(windows.clip_names)
    # per person group (class + group) and the worst; every clip in exactly one group
    assert sum(g["clips"] for g in report["groups"].values()) == report["clip"]["count"]
    assert report["worst_group"]["clip_acc"] == min(g["clip_acc"] for g in report["groups"].values())
    # the stress suite: every condition scored on the same windows
    assert set(report["stress"]) == {*CONDITIONS, "worst"}
    for row in (report["stress"][c] for c in CONDITIONS):
        assert row["window_drop"] == pytest.approx(report["window"]["acc"] - row["window_acc"])
    for png in ("val_confusion_window.png", "val_confusion_clip.png", "val_per_class.png", "val_stress.png"):
        assert (trained / png).stat().st_size > 5_000
    assert torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1  # trainer.max_epochs=2
    assert "val/window_bacc" in (trained / "csv" / "metrics.csv").read_text().splitlines()[0]


def test_eval_reproduces_the_training_report(trained, tmp_path):
    report = json.loads((trained / "val_metrics.json").read_text())
    cfg = compose_run("eval", [f"ckpt_path={trained / 'checkpoints' / 'last.ckpt'}", *SMALL_SYNTHETIC[:5]], tmp_path)
    evaluation = evaluate(cfg)
    for level in ("window", "clip"):  # the same windows (the checkpoint's policy, not the defaults), the same scores
        assert evaluation[level]["count"] == report[level]["count"]
        assert evaluation[level]["acc"] == pytest.approx(report[level]["acc"])
    assert evaluation["worst_group"] == report["worst_group"]
    assert evaluation["stress"]["worst"]["condition"] == report["stress"]["worst"]["condition"]


def test_export_writes_a_valid_card_and_a_matching_graph(trained, tmp_path):
    from musclevision.export.cli import parity_windows

    cfg = compose_run("export", [f"ckpt_path={trained / 'checkpoints' / 'last.ckpt'}", "name=unit"], tmp_path)
    model = load_checkpoint(cfg.ckpt_path)
    landmarks, world, fps = parity_windows(cfg, model, 64)
    onnx_path, card_path = export_checkpoint(model, cfg.ckpt_path, "unit", tmp_path, landmarks, world, fps)
    card = validate_card(json.loads(card_path.read_text()))
    assert card.window_policy.window == 8 and card.window_policy.min_detected == 3 and card.window_policy.fps == 12.5
    assert card.training.data_kind == "synthetic" and card.training.warning
    assert {"train_extra", "train_extra_ratio", "balance"} <= set(card.training.data)  # what was mixed in is said
    assert max(case["max_abs_diff"] for case in card.parity.values()) <= 1e-5
    assert onnx_path.stat().st_size > 10_000
    with torch.no_grad():
        assert model(torch.from_numpy(landmarks[:2]), torch.from_numpy(world[:2])).shape == (2, 5)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model/optimizer=rmsprop", "+model.optimizer.momentum=0.9", "+model.optimizer.weight_decay=1e-4"],  # torch: =0
        ["+model.optimizer.betas=[0.8,0.99]", "model.optimizer.weight_decay=0"],  # a pair; a whole number where a float
        ["+model.scheduler.eta_min=0"],  # cosine: a float annotated, a whole number given
    ],
)
def test_valid_optimizer_and_scheduler_values_are_not_refused(overrides, tmp_path):
    """The early check of model values reads the kinds torch annotates (weight_decay: float = 0), not the defaults."""
    cfg = compose_run("train", [*SMALL_SYNTHETIC, *overrides, "debug=fast_dev_run", "logger=none"], tmp_path)
    assert train(cfg) == {}


def test_eval_scores_a_checkpoint_on_the_cache_it_was_trained_on_unless_told_otherwise(tmp_path):
    """Trained with data.source.cache_dir=<elsewhere> (README's way to train on a copied cache), the checkpoint's
    held-out groups are in that cache: eval reads them there, as calibrate and export do, not the default cache."""
    from musclevision.data.synthetic import synthesize_clip
    from musclevision.extract.cache import ClipRecord, KeypointCache
    from musclevision.extract.landmarker import PoseSettings

    rng = np.random.default_rng(0)
    for folder, per_group in (("elsewhere", 1), ("another", 2)):
        cache = KeypointCache.open_for_writing(tmp_path / folder, PoseSettings.resolve().cache_key())
        for label in ("Lunges", "PushUps"):
            for group, k in ((g, k) for g in ("g01", "g02", "g03", "g04") for k in range(per_group)):
                clip = synthesize_clip(label, rng, seconds=2.0, missing_rate=0.0)
                n, video_id = clip.frames, f"{label}/v_{label}_{group}_c0{k + 1}"
                record = ClipRecord(video_id, label, group, "x", "ok", None, n, n, n, 1.0, 25.0, 320, 240, "", 1, 1, 0.0,
                                    "now")  # fmt: skip
                cache.write(record, clip.image, clip.world, (np.arange(n) * 40).astype(np.int64))
    source = [f"data.source.cache_dir={tmp_path / 'elsewhere'}", "data.source.video_root=null", "data.classes=[Lunges,PushUps]"]
    small = ["data.split.folds=2", "data.eval_stride=4", "trainer.max_epochs=1", "logger=none", "stress_suite=false"]
    run = tmp_path / "run"
    report = train(compose_run("train", [*source, *small], run))
    evaluation = evaluate(compose_run("eval", [f"ckpt_path={report['checkpoint']}", "stress_suite=false"], tmp_path / "ev"))
    assert evaluation["clip"]["count"] == report["clip"]["count"] == 4  # the two held-out groups' clips, from that cache
    assert evaluation["window"]["acc"] == pytest.approx(report["window"]["acc"])
    other = [f"data.source.cache_dir={tmp_path / 'another'}", "data.source.video_root=null", "stress_suite=false"]
    evaluation = evaluate(compose_run("eval", [f"ckpt_path={report['checkpoint']}", *other], tmp_path / "ev2"))
    assert evaluation["clip"]["count"] == 8  # told otherwise: the same two groups, in the other cache (2 clips each)
    # split=all, no data chosen: every clip of its own cache (not the default UCF101 cache, which this model's
    # classes may not be in), told that its training clips are among them
    evaluation = evaluate(compose_run("eval", [f"ckpt_path={report['checkpoint']}", "split=all", "stress_suite=false"],
                                      tmp_path / "ev3"))  # fmt: skip
    assert evaluation["clip"]["count"] == 8 and evaluation["stage"] == "all"  # 2 classes x 4 groups x 1 clip


def test_a_cards_tags_carry_no_path_of_the_machine_that_trained_it():
    """Cards travel: the training record's paths are made relative to the project or left out, its tags too."""
    from musclevision.export.exporter import portable_tag
    from musclevision.paths import project_root

    assert portable_tag("data.source.cache_dir=/tmp/mycache") == "data.source.cache_dir=<a path outside the project>"
    assert portable_tag(f"data.source.cache_dir={project_root()}/data/cache/x") == "data.source.cache_dir=data/cache/x"
    assert portable_tag("model.hidden_size=64") == "model.hidden_size=64" and portable_tag("best") == "best"


def test_a_search_maximizes_the_experiments_own_metric(tmp_path):
    """hparams_search=optuna keeps what the experiment optimizes (the paper's recipe: whole-clip accuracy)."""
    paper = compose_run("train", ["experiment=paper", "hparams_search=optuna"], tmp_path / "a")
    assert paper.optimized_metric == "val/wholeclip_acc" and paper.callbacks.model_checkpoint.monitor == "val/wholeclip_acc"
    assert compose_run("train", ["hparams_search=optuna"], tmp_path / "b").optimized_metric == "val/window_bacc"


def test_a_misspelt_key_in_an_experiment_file_is_named_not_added(tmp_path, monkeypatch):
    """`# @package _global_` lets an experiment file add any key: a misspelt one (sed: 7) would be read by nothing.
    Its own keys, and those of the experiments it builds on, must exist in the config it sets up."""
    import shutil

    from musclevision import hydra_app

    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)  # (the experiment folder copied as files)
    mine = configs / "experiment" / "mine.yaml"
    for text, said in (
        ("model:\n  hiden_size: 32\n", f"model.hiden_size (in {mine}) is not an option; did you mean model.hidden_size?"),
        ("sed: 7\n", f"sed (in {mine}) is not an option; did you mean seed?"),
        ("model:\n  hidden_size: 32\ndata:\n  augment:\n    pitch_deg: 10\n", None),
        # keys the classes take though no config file lists them (Lightning's, the optimizer's): known
        ("trainer:\n  gradient_clip_val: 1.0\nmodel:\n  optimizer:\n    amsgrad: true\n", None),
        ("trainer:\n  max_epoch: 3\n", f"trainer.max_epoch (in {mine}) is not an option; did you mean trainer.max_epochs?"),
        ("# (no header)\nmodel:\n  hidden_size: 32\n", "experiments/mine.yaml lacks its first line '# @package _global_'"),
    ):
        header = "" if text.startswith("# (no header)") else "# @package _global_\ndefaults:\n  - best\n"
        mine.write_text(header + text)
        monkeypatch.setattr(hydra_app, "config_dir", lambda: configs)
        with initialize_config_dir(config_dir=str(configs), version_base="1.3"):  # (as inside a run: Hydra is set up)
            cfg = compose(config_name="train", overrides=["experiment=mine", "+pose=default"], return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)
            found = hydra_app.unknown_recipe_key("train")
        assert found == said or (said is not None and found is not None and found.startswith(said)), found
