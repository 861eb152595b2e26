"""Training, evaluation and export through the real console scripts (synthetic data for speed)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from helpers import SMALL_SYNTHETIC, assert_ok, mounted, run_cli
from musclevision.card import validate_card
from musclevision.export.onnx_model import onnx_probabilities
from musclevision.models import ExerciseModule
from musclevision.models.module import load_weights
from musclevision.paths import project_root

pytestmark = pytest.mark.integration  # the console scripts end to end (subprocesses)

EXPERIMENTS = sorted(p.stem for p in (project_root() / "experiments").glob("*.yaml"))


def test_every_experiment_is_listed():
    assert {"paper", "paper_leaky", "best", "quickstart"} <= set(EXPERIMENTS)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """Two real epochs on synthetic data with W&B (offline) and CSV logging."""
    run = tmp_path_factory.mktemp("train") / "run"
    done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=2", f"hydra.run.dir={run}", "tags=[test]")
    assert_ok(done)
    return run


def test_training_writes_report_checkpoints_and_logs(trained_run):
    metrics = json.loads((trained_run / "val_metrics.json").read_text())
    assert {"window", "clip", "per_clip"} <= set(metrics)
    assert metrics["window"]["count"] > 0 and len(metrics["window"]["confusion"]) == 5
    for png in ("val_confusion_window.png", "val_confusion_clip.png", "val_per_class.png"):
        assert (trained_run / png).stat().st_size > 5_000
    # The CSV logger saw both epochs' validation, then the report's own validation of last.ckpt (eval_ckpt=last).
    validated = [r for r in csv.DictReader((trained_run / "csv" / "metrics.csv").open()) if r.get("val/window_bacc")]
    assert len(validated) == 3, validated
    assert metrics["checkpoint"] == str(trained_run / "checkpoints" / "last.ckpt")
    assert metrics["window"]["acc"] == pytest.approx(float(validated[-1]["val/window_acc"]), abs=1e-6)
    # One best checkpoint: the first epoch with the highest val/window_bacc (optimized_metric, save_top_k=1).
    baccs = [float(r["val/window_bacc"]) for r in validated[:-1]]
    best = f"best_epoch_{baccs.index(max(baccs)):03d}.ckpt"
    assert sorted(p.name for p in (trained_run / "checkpoints").glob("*.ckpt")) == [best, "last.ckpt"]


def test_wandb_offline_run_files_are_written(trained_run):
    runs = list((trained_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb")), "no W&B event file"
    assert list((runs[0] / "files").glob("media/images/**/*.png")), "plots were not logged to W&B"


def test_the_wandb_upload_hint_is_given_for_a_finished_run_only(trained_run, tmp_path):
    assert "upload it with: wandb sync " in (trained_run / "train.log").read_text()
    (tmp_path / "empty").mkdir()
    done = run_cli("train", f"data.source.cache_dir={tmp_path / 'empty'}", "data.source.video_root=null",
                   f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert done.returncode == 2 and "is not a keypoint cache" in done.stderr, done.stderr
    assert "wandb sync" not in done.stdout + done.stderr + (tmp_path / "run" / "train.log").read_text()


def test_checkpoint_rebuilds_the_model_and_keeps_the_run_config(trained_run):
    model = ExerciseModule.load_from_checkpoint(trained_run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.classes == ["BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups"]
    assert model.run_config["data"]["source"]["_target_"].endswith("SyntheticSource")
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)  # safe to load
    assert checkpoint["epoch"] == 1


def test_resume_from_checkpoint_continues_training(trained_run, tmp_path):
    done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=3", "logger=csv", f"hydra.run.dir={tmp_path}",
                   f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}")  # fmt: skip
    assert_ok(done)
    epochs = {line.split(",")[0] for line in (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[1:]}
    assert "2" in epochs and "0" not in epochs  # only the third epoch was trained
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


def test_a_run_folder_with_last_ckpt_resumes_by_itself(trained_run, tmp_path):
    """What a requeued SLURM job does: same run folder, training continues from its last.ckpt."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes((trained_run / "checkpoints" / "last.ckpt").read_bytes())
    done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=3", "logger=csv", f"hydra.run.dir={tmp_path}")
    assert_ok(done)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


def test_init_ckpt_starts_a_new_run_from_pretrained_weights(trained_run, tmp_path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    pretrained = ExerciseModule.load_from_checkpoint(ckpt, map_location="cpu")
    fresh = ExerciseModule(**pretrained.hparams)
    load_weights(fresh, ckpt)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), pretrained.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="holds another model than this configuration.*same classes, model and feature"):
        load_weights(ExerciseModule(**{**pretrained.hparams, "hidden_size": 8}), ckpt)
    with pytest.raises(ValueError, match="predicts.*pre-train with the same classes"):
        load_weights(ExerciseModule(**{**pretrained.hparams, "classes": pretrained.classes[::-1]}), ckpt)
    done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=1", "logger=csv", f"hydra.run.dir={tmp_path}",
                   f"init_ckpt={ckpt}")  # fmt: skip
    assert_ok(done)
    assert f"network weights from {ckpt}" in (tmp_path / "train.log").read_text()
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # a new run, not a resume
    done = run_cli("train", *SMALL_SYNTHETIC, f"hydra.run.dir={tmp_path}/both", f"init_ckpt={ckpt}", f"ckpt_path={ckpt}")
    assert done.returncode == 2 and "give one of them" in done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, f"hydra.run.dir={tmp_path}/none", "init_ckpt=/nope/last.ckpt")
    assert done.returncode != 0 and "init_ckpt=/nope/last.ckpt does not exist" in done.stderr


def test_missing_ckpt_path_is_a_clear_error(tmp_path):
    done = run_cli("train", *SMALL_SYNTHETIC, "logger=csv", f"hydra.run.dir={tmp_path}", "ckpt_path=/nope/last.ckpt")
    assert done.returncode != 0 and "ckpt_path=/nope/last.ckpt does not exist" in done.stderr


def test_bad_config_values_name_the_option(tmp_path):
    done = run_cli("train", *SMALL_SYNTHETIC, "data.sampling=frames", f"hydra.run.dir={tmp_path}", "logger=csv")
    assert done.returncode == 2 and "musclevision-train: error: data.sampling='frames'" in done.stderr, done
    assert "Traceback" not in done.stderr and "Error in call to target" not in done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "train=false", f"hydra.run.dir={tmp_path}", "logger=csv")
    assert done.returncode == 2 and "train=false" in done.stderr and "ckpt_path=" in done.stderr, done
    done = run_cli("train", *SMALL_SYNTHETIC, "data.windw=8", f"hydra.run.dir={tmp_path}")
    assert (
        done.returncode == 2
        and "musclevision-train: error: data.windw is not an option; did you mean data.window?" in done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # not Hydra's seven lines before ours
    done = run_cli("train", "-m", *SMALL_SYNTHETIC, "data.windw=4,8", f"hydra.sweep.dir={tmp_path}/sweep")  # in a sweep too
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "musclevision-train: error: data.windw is not an option; did you mean data.window?"
    ], done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "data.source.cache_dir=/x", f"hydra.run.dir={tmp_path}")  # synthetic data
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "musclevision-train: error: data.source.cache_dir is not an option with data/source=synthetic (the options of "
        "data.source: _target_, groups, clips_per_group, seed)"
    ], done.stderr
    done = run_cli("train", "-m", *SMALL_SYNTHETIC, "model=gcn,lstm", "model.net.features.scene_motion=true",
                   f"hydra.sweep.dir={tmp_path}/sweep2")  # a key one of the swept configs lacks  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "musclevision-train: error: model.net.features.scene_motion is not an option with model=gcn (the options of "
        "model.net.features: coords, streams)"
    ], done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "+model.net.levels=5", f"hydra.run.dir={tmp_path}")  # a TCN option, added
    assert (
        done.returncode == 2
        and "musclevision-train: error: model: MaskedRNN.__init__() got an unexpected keyword " in (done.stderr)
        and "Error in call to target" not in done.stderr
    ), done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "modl.hidden_size=8", f"hydra.run.dir={tmp_path}")  # a misspelt section
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "musclevision-train: error: modl.hidden_size is not an option: this command has no modl options; did you mean model?"
    ], done.stderr
    # another command's option, beside a required one not given yet (name=???): the option is named, not name
    done = run_cli("export", "ckpt_path=x.ckpt", "name=m", "model.net.mirror_tta=true", f"hydra.run.dir={tmp_path}/e")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "musclevision-export: error: model.net.mirror_tta is not an option: this command has no model options"
    ], done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "experimnt=best", f"hydra.run.dir={tmp_path}")  # a misspelt group
    assert done.returncode == 2 and "experimnt is not an option of musclevision-train; did you mean experiment?" in (
        done.stderr
    ), done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "experiment=bst", f"hydra.run.dir={tmp_path}")  # a config not in its group
    assert done.returncode == 2 and "experiment=bst is not one of the experiment configs; did you mean experiment=best?" in (
        done.stderr
    ), done.stderr
    assert "paper_leaky" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "experiment=best,bst", f"hydra.run.dir={tmp_path}")  # several, no -m
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "musclevision-train: error: experiment=best,bst lists several values: add -m to run one job for each "
        "(musclevision-train -m ...)"
    ], done.stderr
    done = run_cli("train", "-m", *SMALL_SYNTHETIC, "experiment=best,bst", f"hydra.sweep.dir={tmp_path}/sweep3")
    assert done.returncode == 2 and "experiment=bst is not one of the experiment configs; did you mean" in done.stderr
    done = run_cli("train", "-m", *SMALL_SYNTHETIC, "hydra.launcher=slurm_t4", f"hydra.sweep.dir={tmp_path}/sweep4")
    assert done.returncode == 2 and "write hydra/launcher=slurm_t4 (a slash)" in done.stderr, done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "model.optimizer=sgd", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2 and "model.optimizer=sgd sets a value where a config belongs: choose one with " in (
        done.stderr
    ), done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=-5", f"hydra.run.dir={tmp_path}", "logger=csv")
    assert done.returncode == 2 and "musclevision-train: error: trainer: `max_epochs` must be a non-negative" in done.stderr, done
    assert "Error in call to target" not in done.stderr
    done = run_cli("train", *SMALL_SYNTHETIC, "model=gru", "model.hiden_size=8", f"hydra.run.dir={tmp_path}")  # a group's keys
    assert done.returncode == 2 and "did you mean model.hidden_size?" in done.stderr, done.stderr
    # Split and model settings wrong whatever the data are refused before the real clips are extracted (minutes)
    cache = tmp_path / "cache"
    for override, message in [("data.split.fold=9", "data.split.fold=9 must be in 0..5"),
                              ("data.split.protocol=random", "data.split.protocol='random': use one of"),
                              ("data.split.folds=1", "data.split.folds=1 must be a whole number of at least 2"),
                              ("data.source.pose.zoom_out=9", "data.source.pose.zoom_out=9 must be a number"),
                              # the network is built before the data, the optimizer only when training starts
                              ("model.optimizer.lr=abc", "model.optimizer.lr='abc' must be a number"),
                              ("model.optimizer.lr=-1", "model.optimizer: Invalid learning rate: -1"),
                              ("model.hidden_size=abc", "model.hidden_size='abc' must be a whole number"),
                              ("model.net.features.velocity=3", "model.net.features.velocity=3 must be true or false"),
                              ("seed=abc", "seed='abc' must be a whole number"),
                              ("model.optimizer._target_=torch.optim.Adamm",
                               "model.optimizer._target_='torch.optim.Adamm' is not a class that can be imported"),
                              ("model.optimizer._partial_=false", "model.optimizer needs _partial_: true"),
                              # no clip could fill it: the videos' headers say so before they are extracted
                              ("data.window=100000", "data.window=100000 covers 4,000.0 s (slots 1/data.fps=0.04 s "
                                                     "apart), longer than every video to extract (the longest lasts "
                                                     "12.5 s)")]:  # fmt: skip
        done = run_cli("train", override, f"data.source.cache_dir={cache}", f"hydra.run.dir={tmp_path / 'real'}", "logger=csv")
        assert done.returncode == 2 and f"musclevision-train: error: {message}" in done.stderr, (override, done.stderr)
        assert not cache.exists(), override  # nothing was extracted


def test_hostile_values_get_one_clear_line(trained_run, tmp_path):
    """A wrong type, a window longer than any clip (it used to grow to 24 GB), a random or foreign checkpoint."""
    garbage = tmp_path / "random.ckpt"
    garbage.write_bytes(np.random.default_rng(0).bytes(1000))
    last = trained_run / "checkpoints" / "last.ckpt"
    cases = [
        (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' must be a whole number or null"),
        (["data.window=100000"], "data.window=100000 is longer than every clip (the longest has "),
        ([f"ckpt_path={garbage}"], f"ckpt_path={garbage} is not a MuscleVision checkpoint"),
        ([f"ckpt_path={last}", "model.hidden_size=32"], f"ckpt_path={last} holds another model than this configuration"),
    ]
    for overrides, message in cases:
        done = run_cli("train", *SMALL_SYNTHETIC, *overrides, f"hydra.run.dir={tmp_path / 'run'}", "logger=csv")
        assert done.returncode == 2 and f"musclevision-train: error: {message}" in done.stderr, (overrides, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.integration
def test_a_full_or_read_only_disk_is_one_line_naming_the_file(tmp_path):
    with mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=600k", "tmpfs") as small:  # room for a few logs only
        done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=1", "logger=csv", f"hydra.run.dir={small / 'run'}")
        assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
        assert f"musclevision-train: error: cannot write {small / 'run' / 'checkpoints'}/" in done.stderr, done.stderr
        assert "(No space left on device); that disk is full" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "folder").mkdir()
    with mounted(tmp_path / "read-only", "--bind", str(tmp_path / "folder")) as read_only:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(read_only)], check=True)
        done = run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=1", f"hydra.run.dir={read_only / 'run'}")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"musclevision-train: error: cannot write {read_only / 'run'} (Read-only file system)" in done.stderr


def test_overfit_a_few_batches(tmp_path):
    done = run_cli("train", *SMALL_SYNTHETIC, "debug=overfit", "trainer.max_epochs=40", f"hydra.run.dir={tmp_path}")
    assert_ok(done)
    rows = [line.split(",") for line in (tmp_path / "csv" / "metrics.csv").read_text().splitlines()]
    column = rows[0].index("train/acc")
    accs = [float(r[column]) for r in rows[1:] if len(r) > column and r[column]]
    assert np.mean(accs[-3:]) > 0.95, accs[-5:]


def test_eval_cli_reports_window_clip_and_whole_clip(trained_run, tmp_path):
    done = run_cli("eval", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", *SMALL_SYNTHETIC[:5],
                   "split=all", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert_ok(done)
    metrics = json.loads((tmp_path / "all_metrics.json").read_text())
    assert {"window", "clip", "wholeclip"} <= set(metrics)
    assert metrics["clip"]["count"] == 5 * 4 * 2  # every synthetic clip
    assert (tmp_path / "all_confusion_wholeclip.png").is_file()


def test_eval_on_val_uses_the_checkpoints_own_split(trained_run, tmp_path):
    trained = json.loads((trained_run / "val_metrics.json").read_text())
    # fold=1 on the command line must not turn the checkpoint's training groups into "val"
    done = run_cli("eval", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", *SMALL_SYNTHETIC[:5],
                   "data.split.fold=1", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert_ok(done)
    metrics = json.loads((tmp_path / "val_metrics.json").read_text())
    assert metrics["split"] == trained["split"] and metrics["window"]["acc"] == pytest.approx(trained["window"]["acc"])
    done = run_cli("eval", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "split=tset", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2 and "split='tset'" in done.stderr, done
    done = run_cli("eval", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", *SMALL_SYNTHETIC[:5], "split=test",
                   "stress_suite=false", f"hydra.run.dir={tmp_path / 'test'}")  # fmt: skip
    assert done.returncode == 2 and "has no 'test' side: use split=val" in done.stderr, done


def test_eval_scores_a_synthetic_checkpoint_on_its_own_data_and_a_cache_of_some_of_its_classes(trained_run, tmp_path):
    """Without data=synthetic, a checkpoint trained on synthetic keypoints is scored on its own held-out synthetic
    groups (not on the video cache of the data config); split=all scores a cache holding only some of its classes."""
    from musclevision.data.synthetic import synthesize_clip
    from musclevision.extract.cache import ClipRecord, KeypointCache
    from musclevision.extract.landmarker import PoseSettings

    ckpt = trained_run / "checkpoints" / "last.ckpt"
    trained = json.loads((trained_run / "val_metrics.json").read_text())
    done = run_cli("eval", f"ckpt_path={ckpt}", "stress_suite=false", "data.eval_stride=4", f"hydra.run.dir={tmp_path / 'own'}")
    assert_ok(done)
    assert "trained on synthetic keypoints (data=synthetic): its val groups are scored there" in done.stderr + done.stdout
    metrics = json.loads((tmp_path / "own" / "val_metrics.json").read_text())
    assert metrics["split"] == trained["split"] and metrics["window"]["acc"] == pytest.approx(trained["window"]["acc"])
    cache = KeypointCache.open_for_writing(tmp_path / "cache", PoseSettings.resolve().cache_key())
    rng = np.random.default_rng(0)
    for k, label in enumerate(["Lunges", "Lunges", "PushUps"]):  # two of the model's five classes
        clip = synthesize_clip(label, rng, seconds=3.0, missing_rate=0.0)
        n, video_id = clip.frames, f"{label}/v_{label}_g01_c0{k}"
        record = ClipRecord(video_id, label, "g01", "x", "ok", None, n, n, n, 1.0, 25.0, 320, 240, "", 1, 1, 0.0, "now")
        cache.write(record, clip.image, clip.world, (np.arange(n) * 40).astype(np.int64))
    done = run_cli("eval", f"ckpt_path={ckpt}", "split=all", f"data.source.cache_dir={tmp_path / 'cache'}",
                   "data.source.video_root=null", "stress_suite=false", f"hydra.run.dir={tmp_path / 'other'}")  # fmt: skip
    assert_ok(done)
    assert "has no clips of ['BenchPress', 'BodyWeightSquats', 'WallPushups']: scoring the clips of" in done.stderr + done.stdout
    assert json.loads((tmp_path / "other" / "all_metrics.json").read_text())["clip"]["count"] == 3


@pytest.mark.integration
def test_export_to_a_read_only_folder_is_one_line_naming_it_before_the_export(trained_run, tmp_path):
    (tmp_path / "folder").mkdir()
    with mounted(tmp_path / "read-only", "--bind", str(tmp_path / "folder")) as read_only:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(read_only)], check=True)
        done = run_cli("export", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "name=unit",
                       f"out_dir={read_only / 'exports'}", f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr  # the disk's condition: 1, as train's
    assert f"musclevision-export: error: cannot write {read_only / 'exports'} (Read-only file system); " in done.stderr
    assert "choose a folder you can write to" in done.stderr and ".tmp" not in done.stderr, done.stderr


def test_export_writes_a_checked_onnx_and_model_card(trained_run, tmp_path):
    done = run_cli("export", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "name=unit", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert_ok(done)
    card = json.loads((tmp_path / "unit.json").read_text())
    assert card["classes"] == ["BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups"]
    assert card["inputs"][0]["name"] == "landmarks" and card["opset"] == 17
    # the window policy the model was trained and evaluated under (data.window, data.min_detected, clip fps)
    assert card["window_policy"] == {"fps": 25.0, "window": 8, "min_detected": 4, "smoothing_s": 0.3, "threshold": 0.6}
    assert card["training"]["data_kind"] == "synthetic" and "not for real use" in card["training"]["warning"]
    validate_card(card)
    # a card travels: no absolute path of the machine that made it, anywhere in it
    strings = re.findall(r'"([^"]*)"', (tmp_path / "unit.json").read_text())
    assert not [s for s in strings if s.startswith("/") or str(project_root()) in s]
    assert card["pose_model"]["variant"] == "full" and len(card["pose_model"]["bundle_sha256"]) == 64
    assert max(case["max_abs_diff"] for case in card["parity"].values()) <= 1e-5
    graph = onnx.load(tmp_path / "unit.onnx")
    assert graph.opset_import[0].version == 17
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", 33, 4]
    # dynamic axes for real: any batch, any history length, NaN rows for frames without a person
    x = np.random.default_rng(0).random((3, 20, 33, 4)).astype(np.float32)
    x[1, 5:9] = np.nan
    probs = onnx_probabilities(tmp_path / "unit.onnx", x)
    assert probs.shape == (3, 5) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert "replaced" not in done.stderr
    # the same name again: the earlier model is replaced, and the person is told which one
    again = run_cli("export", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "name=unit", f"out_dir={tmp_path}",
                    f"hydra.run.dir={tmp_path / 'log2'}")  # fmt: skip
    assert_ok(again)
    said = f"note: this replaced {tmp_path / 'unit.json'}, an earlier model of that name (classes BenchPress, "
    assert said in again.stderr and f"made {card['created']}); give another name=... to keep both" in again.stderr


def test_export_and_eval_refuse_a_bad_name_and_a_missing_checkpoint(trained_run, tmp_path):
    done = run_cli("export", "ckpt_path=/nope.ckpt", "name=x", f"out_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'log'}")
    assert done.returncode == 2 and "musclevision-export: error: ckpt_path=/nope.ckpt does not exist" in done.stderr, done
    done = run_cli("eval", "ckpt_path=/nope.ckpt", f"hydra.run.dir={tmp_path / 'log'}")
    assert done.returncode == 2 and "/nope.ckpt" in done.stderr, done
    done = run_cli("export", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "name=../evil", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert done.returncode == 2 and "plain file name" in done.stderr
    done = run_cli("export", f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "name=a b", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert done.returncode == 2 and "name='a b' must be a plain file name" in done.stderr, done.stderr
    assert "pydantic" not in done.stderr and "string_pattern_mismatch" not in done.stderr
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.parametrize("experiment", ["best", "paper"])
def test_experiments_train_on_real_keypoints(experiment, real_cache, tmp_path):
    """The real-data path end to end: cached BlazePose keypoints of shared clips, group folds, a report."""
    done = run_cli("train", f"experiment={experiment}", f"data.source.cache_dir={real_cache}", "data.source.video_root=null",
                   "data.split.folds=2", "trainer.max_epochs=2", "logger=csv", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert_ok(done)
    metrics = json.loads((tmp_path / "val_metrics.json").read_text())
    assert metrics["window"]["count"] > 100 and len(metrics["classes"]) == (5 if experiment == "best" else 3)
    if experiment == "paper":  # trained on whole clips: also judged on whole clips
        assert metrics["wholeclip"]["count"] == metrics["clip"]["count"] > 0
    groups = {line for line in (tmp_path / "train.log").read_text().splitlines() if "val groups" in line}
    assert groups, "the split was not logged"


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory) -> Path:
    """The graph network, one epoch on the same synthetic data and split as ``trained_run``."""
    run = tmp_path_factory.mktemp("train") / "gcn"
    done = run_cli("train", *SMALL_SYNTHETIC, "model=gcn", "trainer.max_epochs=1", "logger=csv", f"hydra.run.dir={run}")
    assert_ok(done)
    return run


def altered_checkpoint(source: Path, target: Path, change) -> Path:
    """A copy of a checkpoint with ``change(checkpoint)`` applied (another training's classes, split, ...)."""
    checkpoint = torch.load(source, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, target)
    return target


def test_export_of_an_ensemble_averages_its_members_in_one_graph(trained_run, graph_run, tmp_path):
    members = [trained_run / "checkpoints" / "last.ckpt", graph_run / "checkpoints" / "last.ckpt"]
    done = run_cli("export", f"ckpt_paths=[{members[0]},{members[1]}]", "name=pair", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert_ok(done)
    card = validate_card(json.loads((tmp_path / "pair.json").read_text()))
    assert [m.checkpoint for m in card.training.members] == [None, None]  # outside the project: no absolute paths
    members_card = card.model_dump()["training"]["members"]
    assert [m["net"]["arch"] for m in members_card] == ["lstm", "gcn"] and card.training.checkpoint is None
    reports = [json.loads((run / "val_metrics.json").read_text()) for run in (trained_run, graph_run)]
    assert [m["metrics"]["window"]["acc"] for m in members_card] == [r["window"]["acc"] for r in reports]  # each its own
    assert [i.name for i in card.inputs] == ["landmarks", "world"]  # the graph model reads the world landmarks
    assert max(case["max_abs_diff"] for case in card.parity.values()) <= 1e-5
    # the ONNX graph gives the mean of what each member gives on its own
    x = np.random.default_rng(0).random((3, 8, 33, 4)).astype(np.float32)
    world = np.random.default_rng(1).random((3, 8, 33, 3)).astype(np.float32) - 0.5
    x[1, 2:4] = np.nan
    with torch.no_grad():
        expected = np.mean([torch.softmax(ExerciseModule.load_from_checkpoint(m, map_location="cpu").eval()(
            torch.from_numpy(x), torch.from_numpy(world)), -1).numpy() for m in members], axis=0)  # fmt: skip
    np.testing.assert_allclose(onnx_probabilities(tmp_path / "pair.onnx", x, world), expected, atol=1e-5)


def test_ensemble_export_refuses_members_of_other_classes_or_windows(trained_run, graph_run, tmp_path):
    lstm = trained_run / "checkpoints" / "last.ckpt"
    reordered = altered_checkpoint(graph_run / "checkpoints" / "last.ckpt", tmp_path / "reordered.ckpt",
                                   lambda c: c["hyper_parameters"]["classes"].reverse())  # fmt: skip
    done = run_cli("export", f"ckpt_paths=[{lstm},{reordered}]", "name=bad", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert done.returncode == 2 and "ensemble members differ in classes" in done.stderr, done
    longer = altered_checkpoint(graph_run / "checkpoints" / "last.ckpt", tmp_path / "longer.ckpt",
                                lambda c: c["hyper_parameters"].update(window=16))  # fmt: skip
    done = run_cli("export", f"ckpt_path={lstm}", f"ckpt_paths=[{longer}]", "name=bad", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert done.returncode == 2 and "ensemble members differ in window policy" in done.stderr, done
    assert not list(tmp_path.glob("*.onnx"))


def test_ensemble_of_a_sweeps_folds(trained_run, graph_run, tmp_path):
    """sweep_dir=... ensemble=true: every fold's model of the sweep, as one graph."""
    sweep = tmp_path / "sweep"
    for number, run in enumerate([trained_run, graph_run]):  # two "folds" of one configuration
        (sweep / str(number) / ".hydra").mkdir(parents=True)
        (sweep / str(number) / ".hydra" / "overrides.yaml").write_text(f"- data.split.fold={number}\n")
        (sweep / str(number) / "val_metrics.json").write_text((run / "val_metrics.json").read_text())
    done = run_cli("export", f"sweep_dir={sweep}", "ensemble=true", "name=folds", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert_ok(done)
    card = json.loads((tmp_path / "folds.json").read_text())
    assert [m["net"]["arch"] for m in card["training"]["members"]] == ["lstm", "gcn"]
    (sweep / "1" / "val_metrics.json").unlink()  # a fold that failed: no ensemble of the rest
    done = run_cli("export", f"sweep_dir={sweep}", "ensemble=true", "name=folds", f"out_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'log'}")  # fmt: skip
    assert done.returncode == 2 and "runs 1 have no report" in done.stderr, done


def test_eval_of_an_ensemble_needs_members_of_one_split(trained_run, graph_run, tmp_path):
    members = [trained_run / "checkpoints" / "last.ckpt", graph_run / "checkpoints" / "last.ckpt"]
    done = run_cli("eval", f"ckpt_paths=[{members[0]},{members[1]}]", *SMALL_SYNTHETIC[:5], "stress_suite=false",
                   f"hydra.run.dir={tmp_path / 'pair'}")  # fmt: skip
    assert_ok(done)
    metrics = json.loads((tmp_path / "pair" / "val_metrics.json").read_text())
    assert metrics["checkpoint"] == [str(m) for m in members] and metrics["window"]["count"] > 0
    assert metrics["split"] == json.loads((trained_run / "val_metrics.json").read_text())["split"]
    other_fold = altered_checkpoint(members[1], tmp_path / "fold1.ckpt",
                                    lambda c: c["musclevision"]["config"]["data"]["split"].update(fold=1))  # fmt: skip
    done = run_cli("eval", f"ckpt_paths=[{members[0]},{other_fold}]", *SMALL_SYNTHETIC[:5], f"hydra.run.dir={tmp_path / 'bad'}")
    assert done.returncode == 2 and "trained on different splits" in done.stderr, done


def test_calibration_loads_the_windows_an_ensembles_members_share_once(trained_run, graph_run, tmp_path, monkeypatch):
    """The members of one fold's ensemble score the same held-out windows: their keypoints are loaded once (training
    settings such as the split's seed or the augmentation do not matter), another fold's windows are its own, and
    each checkpoint gets its own logits in the order given."""
    import hydra.utils

    from musclevision import calibrate

    members = [trained_run / "checkpoints" / "last.ckpt", graph_run / "checkpoints" / "last.ckpt"]

    def train_side(c):
        data = c["musclevision"]["config"]["data"]
        data["split"]["seed"] = 12345
        data["augment"] = {**(data.get("augment") or {}), "yaw_deg": 90}

    reseeded = altered_checkpoint(members[1], tmp_path / "reseeded.ckpt", train_side)
    other_fold = altered_checkpoint(members[0], tmp_path / "fold1.ckpt",
                                    lambda c: c["musclevision"]["config"]["data"]["split"].update(fold=1))  # fmt: skip
    given = [other_fold, members[1], members[0], reseeded]
    quiet = lambda _: None  # noqa: E731
    alone = [calibrate.held_out_logits([m], log=quiet)[0] for m in given]
    built = []
    real = hydra.utils.instantiate
    monkeypatch.setattr(hydra.utils, "instantiate", lambda cfg, *a, **k: built.append(cfg) or real(cfg, *a, **k))
    together = calibrate.held_out_logits(given, log=quiet)
    assert len(built) == 2  # fold 0 once for its three checkpoints, fold 1 once
    assert [r["checkpoint"] for r in together] == [str(m) for m in given]
    for got, want in zip(together, alone):
        np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-6)
        np.testing.assert_array_equal(got["labels"], want["labels"])
    assert len(together[0]["labels"]) != len(together[2]["labels"]) or not np.array_equal(
        together[0]["labels"], together[2]["labels"])  # fmt: skip
    assert not np.allclose(together[1]["logits"], together[2]["logits"])  # two models, not one answer copied


def test_calibration_of_an_ensemble_fits_the_ensembles_probabilities(trained_run, graph_run, tmp_path):
    """musclevision-calibrate --ensemble: the fold's members scored as one (the mean of their probabilities, the
    held-out accuracy musclevision-eval gives the ensemble); the export of that ensemble takes its temperature, and a
    calibration of single models is refused for an ensemble (and the other way round)."""
    members = [trained_run / "checkpoints" / "last.ckpt", graph_run / "checkpoints" / "last.ckpt"]
    done = run_cli("calibrate", *map(str, members), "--out", str(tmp_path / "x.json"))
    assert done.returncode == 2 and "validate the same fold" in done.stderr and "--ensemble" in done.stderr, done
    done = run_cli("calibrate", str(members[0]), "--ensemble", "--out", str(tmp_path / "x.json"))
    assert done.returncode == 2 and "leave --ensemble out" in done.stderr, done
    done = run_cli("calibrate", "--ensemble", *map(str, members), "--out", str(tmp_path / "cal-pair.json"))
    assert_ok(done)
    assert "ensembles of 2" in done.stdout and "in-sample: one fold" in done.stdout and "cross-fitted" not in done.stdout
    result = json.loads((tmp_path / "cal-pair.json").read_text())
    assert result["ensemble_members"] == 2 and result["checkpoints"] == [[str(m) for m in members]]
    done = run_cli("eval", f"ckpt_paths=[{members[0]},{members[1]}]", *SMALL_SYNTHETIC[:5], "stress_suite=false",
                   "data.eval_stride=1", f"hydra.run.dir={tmp_path / 'eval'}")  # fmt: skip
    assert_ok(done)
    window = json.loads((tmp_path / "eval" / "val_metrics.json").read_text())["window"]
    assert result["windows"] == window["count"] and result["accuracy"] == pytest.approx(window["acc"], abs=1e-6)
    single = run_cli("calibrate", str(members[0]), "--out", str(tmp_path / "one.json"))
    assert_ok(single)
    export = ["name=pair", f"out_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'log'}"]
    done = run_cli("export", f"ckpt_paths=[{members[0]},{members[1]}]", f"calibration={tmp_path / 'one.json'}", *export)
    assert done.returncode == 2 and "fitted for single models" in done.stderr and "--ensemble" in done.stderr, done
    done = run_cli("export", f"ckpt_path={members[0]}", f"calibration={tmp_path / 'cal-pair.json'}", *export)
    assert done.returncode == 2 and "fitted for ensembles of 2" in done.stderr, done
    done = run_cli("export", f"ckpt_paths=[{members[0]},{members[1]}]", f"calibration={tmp_path / 'cal-pair.json'}", *export)
    assert_ok(done)
    card = validate_card(json.loads((tmp_path / "pair.json").read_text()))
    # one fold: no other folds to fit its temperature on; fitted and measured on its own windows, and said so
    assert result["fold_temperatures"] == {} and result["cross_fitted"] is False
    assert card.calibration.temperature == pytest.approx(result["temperature"], abs=1e-4)
    assert "in-sample" in card.calibration.measured_on and "other folds" not in card.calibration.measured_on
    assert "ensemble of 2" in card.calibration.measured_on and card.window_policy.threshold == result["threshold"]


def test_torch_threads_are_lowered_when_other_work_keeps_the_cores_busy(monkeypatch):
    """A second intra-op thread that has to share a core with another job made the paper's recipe 18x slower."""
    import os

    from musclevision.train import free_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, asked, expected in ((0.1, 2, 2), (0.9, 2, 1), (1.6, 2, 1), (5.0, 4, 1), (0.0, 1, 1), (0.0, 8, 2)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load), raising=False)
        assert free_threads(asked) == expected, (load, asked)
    # 8 cores of a 64-core node (a SLURM job): the node's load of 16 is 2 of its 8 cores' worth
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "getloadavg", lambda: (16.0, 16.0, 16.0), raising=False)
    assert free_threads(8) == 6


def test_tracker_tags_fit_wandbs_64_characters():
    """A sweep's overrides become W&B tags; a tag over 64 characters (a cluster's cache path) made every job fail."""
    from musclevision.train import TAG_LENGTH, short_tag

    path = "data.source.cache_dir=/scratch/me/keypoint_cache_of_the_ucf101_exercise_clips_full"
    assert len(path) > TAG_LENGTH
    tag = short_tag(path)
    assert len(tag) == TAG_LENGTH and tag.startswith("data.source.cache_dir=…") and tag.endswith("exercise_clips_full")
    assert short_tag("model.hidden_size=32") == "model.hidden_size=32"
    long_key = "x" * 80 + "=1"
    assert len(short_tag(long_key)) == TAG_LENGTH and short_tag(long_key).endswith("=1")


def test_a_launcher_given_to_a_single_run_says_the_run_stays_here(tmp_path):
    """hydra/launcher=slurm_t4 without -m: Hydra runs the job locally; on a login node a person must be told."""
    done = run_cli("train", *SMALL_SYNTHETIC, "hydra/launcher=slurm_t4", "trainer.max_epochs=1", "stress_suite=false",
                   "logger=none", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert_ok(done)
    assert "hydra/launcher=slurm_t4 is used by sweeps only (-m): this single run runs here" in done.stdout + done.stderr


def test_a_bad_value_in_one_job_of_a_local_sweep_fails_that_job_alone_in_one_line(tmp_path):
    """-m data.split.fold=9,0 on this machine: job 0's value is refused in one line, job 1 still runs, and the sweep
    ends with the list of failed jobs (exit 1), not Hydra's traceback after the first."""
    done = run_cli("train", "-m", *SMALL_SYNTHETIC, "trainer.max_epochs=1", "stress_suite=false", "logger=none",
                   "data.split.fold=9,0", f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr, done.stderr
    assert "musclevision-train: error: 1 of 2 sweep jobs failed (the others ran):" in done.stderr, done.stderr
    assert "job #0 (data.split.fold=9): data.split.fold=9 must be in 0..1" in done.stderr, done.stderr
    assert (tmp_path / "0" / "error.txt").is_file() and (tmp_path / "1" / "val_metrics.json").is_file()
