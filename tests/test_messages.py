"""What people read: strings from outside (paths, ids, decoder errors, overrides) are printed as
they are, never read as rich markup."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import yaml
from rich.console import Console

from helpers import flat, run_cli
from musclevision.extract.cache import ClipRecord
from musclevision.extract.progress import print_summary
from musclevision.extract.runner import ExtractSummary
from musclevision.sweep import compare

# A decoder quotes the path in brackets ("[/videos/a.avi]" reads as a closing tag); the others are
# an opening style tag, an unknown tag and a trailing backslash that would escape what follows.
HOSTILE = ["[/videos/PushUps/a.avi]", "[bold red]", "[lunges]", "C:\\clips\\"]


def record(video_id: str, status: str, error: str) -> ClipRecord:
    return ClipRecord(video_id=video_id, label="PushUps", group="g01", source=f"/x/{video_id}.avi", status=status,
                      error=error, frames_declared=-1, frames_decoded=0, frames_detected=0, detection_rate=0.0, fps=0.0,
                      width=0, height=0, sha256="", size=1, mtime_ns=1, seconds=0.0, finished="")  # fmt: skip


def test_extractor_summary_prints_outside_strings_literally(tmp_path):
    done = [record(f"PushUps/{text}", "failed", f"DECORDError: {text} Failed to measure duration") for text in HOSTILE]
    summary = ExtractSummary(tmp_path / "[cache]" / "[/x]", selected=len(done), done=done)
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=300))
    text = flat(out.getvalue())
    assert f"{tmp_path}/[cache]/[/x]" in text, text
    for hostile in HOSTILE:
        assert f"PushUps/{hostile}" in text and f"DECORDError: {hostile} Failed" in text, (hostile, text)


def test_videos_outside_the_class_folder_layout_are_named_not_skipped_in_silence(tmp_path):
    from musclevision.extract.discover import find_videos, misplaced_videos

    for name in ("Squat/a.avi", "Squat/session1/b.avi", "loose.mp4", "Squat/notes.txt", "Press/c.MOV"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [v.video_id for v in find_videos(tmp_path)] == ["Press/c", "Squat/a"]
    assert misplaced_videos(tmp_path) == ["Squat/session1/b.avi", "loose.mp4"]
    assert misplaced_videos(tmp_path / "nope") == []
    out = io.StringIO()
    summary = ExtractSummary(tmp_path, selected=2, skipped=2, misplaced=misplaced_videos(tmp_path))
    print_summary(summary, Console(file=out, width=300))
    assert (
        "2 video files are not at <ClassName>/<video> under the video root and were skipped: Squat/session1/b.avi, "
        "loose.mp4 (move each into its class folder)" in flat(out.getvalue())
    ), out.getvalue()


def test_compare_prints_overrides_and_paths_literally(tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "[sweep]"
    for number, classes in enumerate(("[lunges]", "[/squats]")):
        hydra = sweep / str(number) / ".hydra"
        hydra.mkdir(parents=True)
        (hydra / "overrides.yaml").write_text(yaml.safe_dump([f"data.classes={classes}", f"model.hidden_size={number}"]))
    monkeypatch.setenv("COLUMNS", "300")
    assert compare.main([str(sweep)]) == 1  # no run has a report yet: listed, exit 1, no crash
    out = flat(capsys.readouterr().out)
    assert "[lunges]" in out and "[/squats]" in out and f"{sweep.resolve()}" in out, out


def test_compare_reads_one_run_folder_as_that_run_and_names_a_missing_folder(tmp_path, capsys, monkeypatch):
    run = tmp_path / "quickstart"  # musclevision-train without -m (make demo's run), with its export run inside
    for folder, overrides in ((run, ["experiment=quickstart"]), (run / "export", ["name=quickstart"])):
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / "val_metrics.json").write_text(json.dumps({"window": {"acc": 0.671, "bacc": 0.697}, "epoch": 6}))
    monkeypatch.setenv("COLUMNS", "300")
    assert compare.main([str(run)]) == 0
    out = flat(capsys.readouterr().out)
    assert "quickstart" in out and "67.1%" in out and "export" not in out, out
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "export", "val_metrics.json"]  # nothing written there
    assert compare.main([str(tmp_path / "nope")]) == 2
    out = capsys.readouterr().out
    assert "nope is not a folder" in out and len(out.strip().splitlines()) == 1, out


def test_compare_names_only_the_files_it_wrote(tmp_path, capsys, monkeypatch):
    """Runs with nothing swept (a folder of separate runs): best.json is written, no plot, and none is claimed."""
    monkeypatch.setenv("COLUMNS", "300")
    for sweep, overrides in ((tmp_path / "same", ["seed=1", "seed=1"]), (tmp_path / "swept", ["seed=1", "seed=2"])):
        for number, override in enumerate(overrides):
            run = sweep / str(number)
            (run / ".hydra").mkdir(parents=True)
            (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([override]))
            (run / "checkpoints").mkdir()
            (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
            report = {
                "window": {"acc": 0.6 + number / 10, "bacc": 0.6 + number / 10},
                "checkpoint": str(run / "checkpoints" / "last.ckpt"),
            }
            (run / "val_metrics.json").write_text(json.dumps(report))
        assert compare.main([str(sweep)]) == 0
        out = flat(capsys.readouterr().out)
        plotted = (sweep / "compare.png").is_file()
        assert plotted == (sweep.name == "swept") and (sweep / "best.json").is_file()
        assert ("compare.png" in out) == plotted, out


def test_compare_says_when_a_cross_validation_is_incomplete_and_shortens_trial_values(tmp_path, capsys, monkeypatch):
    """A fold sweep with one fold failed: '1 of 2' folds, no '± 0.0 %' spread of one value, crossval.json said to
    hold one fold of two; an Optuna trial's long float shown short."""
    monkeypatch.setenv("COLUMNS", "300")
    sweep = tmp_path / "sweep"
    for number, fold in enumerate((0, 1)):
        run = sweep / str(number)
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"data.split.fold={fold}",
                                                                        "model.optimizer.lr=0.000587194737328"]))  # fmt: skip
        if fold == 0:
            (run / "checkpoints").mkdir()
            (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
            (run / "val_metrics.json").write_text(json.dumps({
                "window": {"acc": 0.7, "bacc": 0.7}, "split": "group_kfold fold 0/2: val groups g01",
                "checkpoint": str(run / "checkpoints" / "last.ckpt")}))  # fmt: skip
    assert compare.main([str(sweep)]) == 0
    out = flat(capsys.readouterr().out)
    assert "1 of 2" in out and "70.0% (one fold)" in out and "± 0.0%" not in out, out
    assert "data.window or data.fps differs" not in out
    assert "only 1 of its 2 folds have a report" in out and "1 run has no report yet" in out, out
    assert compare.short_value("0.000587194737328") == "0.0005872" and compare.short_value("best") == "best"


def test_the_sweeps_queue_poll_interval_comes_from_the_environment_or_is_refused_in_one_line(monkeypatch):
    from hydra_plugins.musclevision_launchers import POLL_S, poll_s

    monkeypatch.delenv("MUSCLEVISION_SLURM_POLL_S", raising=False)
    assert poll_s() == POLL_S == 5.0
    monkeypatch.setenv("MUSCLEVISION_SLURM_POLL_S", "0.5")
    assert poll_s() == 0.5
    for bad in ("0", "-1", "fast", "nan", "inf"):
        monkeypatch.setenv("MUSCLEVISION_SLURM_POLL_S", bad)
        with pytest.raises(ValueError, match=f"MUSCLEVISION_SLURM_POLL_S='{bad}' must be a number of seconds > 0"):
            poll_s()


def test_a_bad_poll_interval_stops_a_sweep_before_it_submits_anything(tmp_path):
    done = run_cli("train", "-m", "hydra/launcher=slurm_cpu", "data=synthetic", f"hydra.sweep.dir={tmp_path}",
                   env={"MUSCLEVISION_SLURM_POLL_S": "fast"}, timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in output, output[-2000:]
    assert "MUSCLEVISION_SLURM_POLL_S='fast' must be a number of seconds > 0 (unset it for 5)" in output
    assert not (tmp_path / ".submitit").exists()  # nothing was submitted


def test_a_sweep_with_no_slurm_controller_says_so_and_how_to_start_one(tmp_path):
    """sinfo cannot reach a controller (no slurm.conf, no DNS record): one message that says so and what to do, not
    sbatch's configuration errors followed by advice about partitions."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("sinfo", "sbatch"):
        (fake / name).write_text(
            "#!/bin/sh\necho 'sinfo: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host' >&2\n"
            "echo 'sinfo: fatal: Could not establish a configuration source' >&2\nexit 1\n"
        )
        (fake / name).chmod(0o755)
    path = {"PATH": f"{fake}:{os.environ['PATH']}"}
    done = run_cli("train", "-m", "hydra/launcher=slurm_cpu", "data=synthetic", "model.hidden_size=8,16",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", env=path, timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output, output[-2000:]
    assert "cannot submit the sweep (2 jobs) to SLURM: no SLURM controller answers (sinfo: fatal: Could not establish" in output
    assert "make cluster-up" in output and "drop hydra/launcher=slurm_cpu" in output and "partition" not in output
    assert not (tmp_path / "sweep" / ".submitit").exists()  # nothing was submitted


def test_compare_tells_runs_apart_by_what_they_had_not_by_how_it_was_typed(tmp_path, capsys, monkeypatch):
    """Two sweeps of one recipe side by side: one typed seed=42 and logged to W&B, the other left the seed at its
    default 42 and logged to CSV. Neither difference changes what was learnt: one configuration, its four folds."""
    monkeypatch.setenv("COLUMNS", "300")
    for sweep, extra in (("typed", ["seed=42", "logger=wandb"]), ("default", ["logger=csv"])):
        for fold in (0, 1):
            run = tmp_path / sweep / str(fold)
            (run / ".hydra").mkdir(parents=True)
            (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=best", f"data.split.fold={fold}", *extra]))
            (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 42, "data": {"split": {"fold": fold}}}))
            choices = {"hydra": {"runtime": {"choices": {"experiment": "best"}}}}
            (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(choices))
            (run / "val_metrics.json").write_text(json.dumps({"window": {"acc": 0.9, "bacc": 0.9}, "epoch": 1}))
    runs = compare.read_runs(tmp_path / "typed") + compare.read_runs(tmp_path / "default")
    assert compare.swept_keys(runs) == ["data.split.fold"]
    assert [len(members) for _, members in compare.fold_groups(runs, ["data.split.fold"], "val/window_bacc")] == [4]
    assert runs[2].setting("seed") == "42" and runs[2].setting("experiment") == "best" and runs[2].setting("nope") is None
    assert compare.main([str(tmp_path / "typed"), str(tmp_path / "default")]) == 0
    out = flat(capsys.readouterr().out)
    assert "logger" not in out and "seed" not in out, out


def test_compare_reads_a_runs_config_as_an_override_would_write_it():
    """Interpolations resolved where they can be, nulls, booleans, lists as typed; 1e-3 and 0.001 one group."""
    from pathlib import Path

    config = {"seed": 42, "data": {"split": {"seed": "${seed}"}, "augment": {"time_stretch": [0.7, 1.4]}, "balance": None,
              "out": "${oc.env:MUSCLEVISION_NOT_SET_ANYWHERE}/x", "shuffle": True}}  # fmt: skip
    run = compare.Run(Path("r"), {"model.optimizer.lr": "1e-3"}, config=config, choices={"data/train_extra": None})
    assert [run.setting(k) for k in ("data.split.seed", "data.augment.time_stretch", "data.balance", "data.shuffle")] == [
        "42", "[0.7,1.4]", "null", "true"]  # fmt: skip
    assert run.setting("data.out") == "${oc.env:MUSCLEVISION_NOT_SET_ANYWHERE}/x" and run.setting("data/train_extra") == "null"
    assert run.setting("data.nope") is None
    other = compare.Run(Path("s"), {"data.balance": "null", "model.optimizer.lr": "0.001"}, config=config)
    assert compare.swept_keys([run, other]) == []
    for r, fold in ((run, "0"), (other, "1")):
        r.overrides[compare.FOLD_KEY], r.metrics = fold, {"window": {"acc": 0.9, "bacc": 0.9}}
    assert [
        len(m) for _, m in compare.fold_groups([run, other], ["model.optimizer.lr", compare.FOLD_KEY], "val/window_bacc")
    ] == [2]


def test_compare_warns_that_window_scores_of_different_windows_do_not_compare(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    for number, window in enumerate((8, 16)):
        run = tmp_path / "sweep" / str(number)
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"data.window={window}"]))
        (run / "val_metrics.json").write_text(json.dumps({"window": {"acc": 0.8, "bacc": 0.8}, "epoch": 1}))
    compare.main([str(tmp_path / "sweep")])
    assert "data.window or data.fps differs between these runs" in flat(capsys.readouterr().out)
    compare.main([str(tmp_path / "sweep"), "--metric", "val/clip_bacc"])
    assert "differs between these runs" not in flat(capsys.readouterr().out)


def test_compare_plots_every_swept_option(tmp_path, monkeypatch):
    """An Optuna search of the default space sweeps seven options: seven panels (two rows), the learning rate too."""
    import matplotlib.pyplot as plt

    keys = [f"k{i}" for i in range(6)] + ["model.optimizer.lr"]
    runs = [compare.Run(tmp_path, {k: str(0.1 * (n + 1) + i) for i, k in enumerate(keys)},
                        metrics={"window": {"acc": 0.5 + n / 10, "bacc": 0.5 + n / 10}}) for n in range(4)]  # fmt: skip
    shown = []
    monkeypatch.setattr(plt.Axes, "set_xlabel", lambda ax, label, *a, **k: shown.append((label, ax.get_visible())))
    assert compare.plot(runs, keys, "val/window_bacc", tmp_path / "p.png") and (tmp_path / "p.png").is_file()
    assert shown == [(k, True) for k in keys]


def test_compare_plots_a_searched_range_on_a_real_axis_and_a_few_settings_as_columns():
    x, labels, scale = compare.axis(["0.0003", "0.001", "0.0042", "0.009", "0.001"])  # an Optuna search
    assert x == [0.0003, 0.001, 0.0042, 0.009, 0.001] and labels is None and scale == "log"
    assert compare.axis(["0.1", "0.2", "0.3", "0.4"])[2] == "linear"
    assert compare.axis(["64", "128", "32", "64"]) == ([1.0, 2.0, 0.0, 1.0], ["32", "64", "128"], "linear")
    assert compare.axis(["gcn", "lstm", "gcn"]) == ([0.0, 1.0, 0.0], ["gcn", "lstm"], "linear")
    assert compare.axis(["1e-4", "nan", "0.1", "0.01", "0.001"])[1] == ["1e-4", "0.001", "0.01", "0.1", "nan"]


def test_sbatchs_refusal_is_said_once_with_its_warnings(tmp_path):
    """sbatch refuses the array (its words on stderr, which submitit prints too): one message quoting all of them."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sinfo").write_text("#!/bin/sh\nexit 0\n")
    (fake / "sbatch").write_text("#!/bin/sh\necho 'sbatch: warning: account defaults to none' >&2\n"
                                 "echo 'sbatch: error: Batch job submission failed: Invalid qos' >&2\nexit 1\n")  # fmt: skip
    for name in ("sinfo", "sbatch"):
        (fake / name).chmod(0o755)
    path = {"PATH": f"{fake}:{os.environ['PATH']}"}
    done = run_cli("train", "-m", "hydra/launcher=slurm_cpu", "data=synthetic", "model.hidden_size=8,16",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", env=path, timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output[-2000:]
    assert ("SLURM refused the sweep (2 jobs) at submission: sbatch: warning: account defaults to none sbatch: error: "
            "Batch job submission failed: Invalid qos") in flat(output), output  # fmt: skip
    assert output.count("Invalid qos") == 1 and output.count("account defaults") == 1, output


def test_a_cluster_sweeps_bad_values_are_named_before_anything_is_submitted(tmp_path):
    """Each job's config is checked as training would check it before the array goes to SLURM: a typo in one value
    is named at once, not after the job has waited in the queue. (No controller is needed: nothing gets that far.)"""
    done = run_cli("train", "-m", "hydra/launcher=slurm_t4", "data=synthetic", "data.window=8,0", "model.optimizer.lr=1e-3,-1",
                   f"hydra.sweep.dir={tmp_path}", timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr, done.stderr[-2000:]
    assert ("musclevision-train: error: 3 of these 4 sweep jobs would fail:\n"
            "  jobs #1 (data.window=8 model.optimizer.lr=-1), #3 (data.window=0 model.optimizer.lr=-1): model.optimizer: "
            "Invalid learning rate: -1 (torch.optim.AdamW refused it)\n"
            "  job #2 (data.window=0 model.optimizer.lr=0.001): data.window=0 must be a whole number >= 1\n"
            "(none was submitted)") in done.stderr, done.stderr  # fmt: skip
    assert "job #0" not in done.stderr and "cannot submit" not in done.stdout + done.stderr
    assert not (tmp_path / ".submitit").exists()

    # One reason for every job: said once. An option no class takes: named too.
    unknown = "model: MaskedRNN.__init__() got an unexpected keyword argument 'levels' (an option it does not take: check "
    unknown += "its spelling, or the config it belongs to)"
    for bad, why in (("data.fps=0", "data.fps=0 must be a frame rate in (0, 240]"), ("+model.net.levels=5", unknown)):
        done = run_cli("train", "-m", "hydra/launcher=slurm_t4", "data=synthetic", bad, "seed=1,2,3",
                       f"hydra.sweep.dir={tmp_path / 'b'}", timeout=120)  # fmt: skip
        assert done.returncode == 2 and f"error: all 3 sweep jobs would fail: {why}\n(none was submitted)" in done.stderr


def test_the_check_before_submission_sees_each_jobs_own_paths_and_leaves_files_to_the_nodes(tmp_path):
    """${hydra:job.num} in a value resolves per job, as on the cluster; a checkpoint path is not required to exist
    here (it may be on the cluster's disks only), so such a sweep goes on to submission (no controller here)."""
    done = run_cli("train", "-m", "hydra/launcher=slurm_t4", "data=synthetic", "data.fps=${hydra:job.num}", "seed=1,2",
                   "init_ckpt=/on/the/cluster/only.ckpt", f"hydra.sweep.dir={tmp_path}", timeout=120)  # fmt: skip
    # job #1 (data.fps=1, the checkpoint not looked for) passes: only job #0 is named
    assert done.returncode == 2 and "1 of these 2 sweep jobs would fail:\n  job #0 (seed=1): data.fps=0" in done.stderr


def test_stderr_held_while_hydra_composes_is_passed_on_or_dropped(capsys):
    """What Hydra writes while it reads the command line is held: passed on once composed, dropped when our one-line
    hint replaces it; a stream saved meanwhile (a logging handler) still reaches the real stderr afterwards."""
    import sys

    from musclevision import hydra_app

    hydra_app.hold_stderr()
    saved = sys.stderr
    print("while composing", file=sys.stderr)
    assert capsys.readouterr().err == ""
    hydra_app.release_stderr()
    saved.write("from a saved handler\n")
    print("after", file=sys.stderr)
    assert capsys.readouterr().err == "while composing\nfrom a saved handler\nafter\n"
    hydra_app.hold_stderr()
    print("Hydra's block", file=sys.stderr)
    hydra_app.release_stderr(keep=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("script, example", [("train", "experiment=best_synth"), ("eval", "ckpt_path="), ("export", "name=")])
def test_help_starts_with_what_the_command_does_and_an_example(script, example):
    done = run_cli(script, "--help")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"musclevision-{script}: "), lines[:3]
    assert any(line.strip().startswith(f"musclevision-{script} ") and example in line for line in lines[1:6]), lines[:6]
    assert "== Options, as composed now ==" in lines and "seed: 42" in lines  # then the options themselves


@pytest.mark.parametrize("script", ["replay", "compare", "calibrate", "pose_bundle"])
def test_argparse_help_reads_as_text_without_docstring_markup(script):
    if script == "pose_bundle":  # the .task bundle builder: python -m, no console script
        done = subprocess.run([sys.executable, "-m", "musclevision.extract.pose_bundle", "--help"], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
    else:
        done = run_cli(script, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ") and "``" not in done.stdout, done.stdout[:400]


def test_export_refuses_a_single_runs_folder_as_a_sweep_and_names_its_checkpoint(tmp_path):
    run = tmp_path / "quickstart"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=quickstart"]))
    done = run_cli("export", f"sweep_dir={run}", "name=x", f"hydra.run.dir={tmp_path / 'export'}")
    assert done.returncode == 2, done.stderr
    assert (
        f"sweep_dir={run} is one run's folder, not a multirun's: export it with ckpt_path={run}/checkpoints/last.ckpt"
        in done.stderr
    )


def test_a_write_under_a_file_says_a_file_stands_there_not_that_the_disk_failed(tmp_path):
    from musclevision.oserrors import check_writable, describe_write_error

    (tmp_path / "afile").write_text("")
    with pytest.raises(OSError) as caught:
        check_writable(tmp_path / "afile" / "cache")
    message = describe_write_error(caught.value, tmp_path / "afile" / "cache")
    assert message.startswith(f"cannot write {tmp_path / 'afile' / 'cache'} (Not a directory)"), message
    assert "a file stands where a folder of that path would be" in message and "disk" not in message, message


@pytest.mark.parametrize(
    "output_dir, name",
    [("/x/logs/train/multiruns/2026-11-25_10-00-00/3", "train/multiruns/2026-11-25_10-00-00/3"),
     ("/x/logs/crossval/best/0", "crossval/best/0"), ("/tmp/ext/wb1", "ext/wb1"), ("/x/logs", "x/logs"),
     ("/scratch/me/mv/train/multiruns/t/3", "train/multiruns/t/3")],
)  # fmt: skip
def test_a_wandb_run_is_named_by_its_folder_below_the_logs(monkeypatch, output_dir, name):
    from types import SimpleNamespace

    from musclevision import hydra_app

    here = SimpleNamespace(runtime=SimpleNamespace(output_dir=output_dir))
    monkeypatch.setattr(hydra_app.HydraConfig, "get", staticmethod(lambda: here))
    log_dir = "/scratch/me/mv" if output_dir.startswith("/scratch") else "/x/logs"  # paths.log_dir
    assert hydra_app._run_name(log_dir) == name
