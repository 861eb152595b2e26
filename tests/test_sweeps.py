"""Sweeps for real: a single-node SLURM cluster (slurm/dev-cluster), hydra-submitit-launcher job
arrays, a failing and a killed job, a preempted (requeued) job that resumes, the sharded extraction
array, an Optuna search with the local launcher, and musclevision-compare on the results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import BIN, SHORT_CLIPS, SMALL_SYNTHETIC, assert_ok, link_clips, run_cli
from musclevision.paths import project_root

pytestmark = pytest.mark.integration  # the live SLURM dev cluster (one xdist worker: conftest.ONE_WORKER)

DEV_CLUSTER = project_root() / "slurm" / "dev-cluster"
STATE_DIR = Path(os.environ.get("MUSCLEVISION_SLURM_DIR", "/tmp/musclevision-slurm"))
# The dev cluster has one partition "dev" and no GPUs: the T4 launcher with those two values changed.
ON_DEV_CLUSTER = ["hydra/launcher=slurm_t4", "hydra.launcher.partition=dev", "hydra.launcher.gres=null",
                  "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=null", "hydra.launcher.timeout_min=10"]  # fmt: skip
QUICK = [*SMALL_SYNTHETIC, "trainer.max_epochs=1", "logger=csv", "callbacks.progress_bar=null"]


@pytest.fixture(scope="module")
def slurm_env():
    if os.geteuid() != 0:
        pytest.fail("the SLURM tests start daemons and need root (CI runs as root)")
    started = subprocess.run([str(DEV_CLUSTER / "start.sh")], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"dev cluster did not start:\n{started.stdout}\n{started.stderr}"
    # the sweep reads the queue every second, not every 5 s: each sweep here ends sooner after its jobs
    env = {"SLURM_CONF": str(STATE_DIR / "slurm.conf"), "MUSCLEVISION_SLURM_POLL_S": "1"}
    yield env
    stopped = subprocess.run([str(DEV_CLUSTER / "stop.sh")], capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 0, stopped.stderr


def slurm(*args: str, env: dict, attempts: int = 3) -> str:
    """Run a SLURM command, its stdout. A query (squeue, sacct, sinfo) that fails is tried again: on a loaded
    2-core machine slurmctld sometimes answers a query with a socket timeout. Actions fail at once."""
    for attempt in range(attempts):
        done = subprocess.run(list(args), capture_output=True, text=True, env={**os.environ, **env})
        if done.returncode == 0:
            return done.stdout
        if args[0] not in ("squeue", "sacct", "sinfo") or attempt == attempts - 1:
            raise AssertionError(f"{' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()}")
        time.sleep(2)


def job_ids(sweep: Path) -> list[str]:
    """SLURM ids of a sweep's jobs (``15_0``, ``15_1`` for an array; ``26`` for a lone job)."""
    return sorted(p.parent.name for p in (sweep / ".submitit").glob("*/*_log.out"))


def states(ids: list[str], env: dict, timeout: float = 30) -> dict[str, str]:
    """Final accounting states of jobs. submitit may read a job's result before slurmd has reported
    its end (the process is still exiting), so states that are not final yet are waited out."""
    deadline = time.monotonic() + timeout
    while True:
        out = slurm("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(ids), env=env)
        found = {line.split("|")[0]: line.split("|")[1] for line in out.splitlines() if line}
        if not set(found.values()) & {"PENDING", "RUNNING", "COMPLETING"} or time.monotonic() > deadline:
            return found
        time.sleep(1)


@pytest.fixture(scope="module")
def slurm_sweep(slurm_env, tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("sweep") / "slurm"
    done = run_cli("train", "-m", *ON_DEV_CLUSTER, *QUICK, "model.hidden_size=16,32", f"hydra.sweep.dir={sweep}",
                   env=slurm_env, timeout=400)  # fmt: skip
    assert_ok(done)
    return sweep


def test_a_sweep_runs_as_slurm_array_jobs(slurm_sweep, slurm_env):
    for job in ("0", "1"):
        assert (slurm_sweep / job / "val_metrics.json").is_file()
        assert (slurm_sweep / job / "checkpoints" / "last.ckpt").is_file()
    ids = job_ids(slurm_sweep)
    assert len(ids) == 2 and ids[0].split("_")[0] == ids[1].split("_")[0]  # one array, two tasks
    assert states(ids, slurm_env) == {ids[0]: "COMPLETED", ids[1]: "COMPLETED"}
    hidden = {json.loads((slurm_sweep / j / "val_metrics.json").read_text())["parameters"] for j in ("0", "1")}
    assert len(hidden) == 2  # the two jobs really trained different widths


def test_compare_ranks_the_sweep_and_records_the_best(slurm_sweep):
    done = run_cli("compare", str(slurm_sweep))
    assert_ok(done)
    assert "hidden_size" in done.stdout and "window" in done.stdout
    best = json.loads((slurm_sweep / "best.json").read_text())
    assert Path(best["checkpoint"]).is_file() and best["metric"] == "val/window_bacc"
    assert (slurm_sweep / "compare.png").stat().st_size > 5_000
    export = run_cli("export", f"sweep_dir={slurm_sweep}", "name=swept", f"out_dir={slurm_sweep / 'exports'}",
                     f"hydra.run.dir={slurm_sweep / 'export-log'}")  # fmt: skip
    assert_ok(export)
    assert (slurm_sweep / "exports" / "swept.onnx").is_file()


def test_a_failing_job_ends_the_sweep_with_a_clear_error(slurm_env, tmp_path):
    start = time.monotonic()
    # 40 folds of 4 groups: a value only the data can refuse (bad values the config shows are refused before
    # anything is submitted: test_messages.py)
    quick = [o for o in QUICK if not o.startswith("data.split.folds=")]
    done = run_cli("train", "-m", *ON_DEV_CLUSTER, *quick, "data.split.folds=2,40", f"hydra.sweep.dir={tmp_path}",
                   env=slurm_env, timeout=300)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1 and time.monotonic() - start < 240
    assert "1 of 2 sweep jobs failed" in output and "Traceback" not in output
    assert "job #1" in output and "data.split.folds=40 must be between 2 and the number of groups (4)" in output
    assert "_log.err" in output  # the log to read is named
    assert (tmp_path / "0" / "val_metrics.json").is_file()  # the healthy job still finished


def start_sweep(slurm_env: dict, *overrides: str) -> subprocess.Popen:
    """A quick training sweep on the dev cluster, left running (the test acts on its job meanwhile). Ctrl-C reaches
    it (pytest-xdist workers ignore SIGINT, and so would their children)."""
    return subprocess.Popen(
        [str(BIN / "musclevision-train"), "-m", *ON_DEV_CLUSTER, *QUICK, *overrides], cwd=project_root(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **slurm_env, "WANDB_MODE": "offline"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def test_ctrl_c_while_a_sweep_waits_says_its_jobs_go_on_and_how_to_cancel_them(slurm_env, tmp_path):
    sweep = start_sweep(slurm_env, "trainer.max_epochs=500", "model.hidden_size=16", f"hydra.sweep.dir={tmp_path}")
    try:
        deadline = time.monotonic() + 180
        while not job_ids(tmp_path):  # the job runs (its log exists): the launcher is waiting for it
            assert sweep.poll() is None and time.monotonic() < deadline, "the job never started"
            time.sleep(1)
        time.sleep(2)
        sweep.send_signal(signal.SIGINT)
        stdout, stderr = sweep.communicate(timeout=60)
        job = job_ids(tmp_path)[0]
        assert states([job], slurm_env, timeout=1)[job] in ("RUNNING", "COMPLETING"), "the job must go on running"
    finally:
        sweep.kill()
        for job in job_ids(tmp_path):
            subprocess.run(["scancel", job], capture_output=True, env={**os.environ, **slurm_env})
    output = stdout + stderr
    assert sweep.returncode == 130 and "Traceback" not in output, output[-3000:]
    assert f"stopped waiting; the jobs not done go on running on the cluster (squeue -j {job})" in output, output[-2000:]
    assert f"Cancel them with: scancel {job}. Once they are done: musclevision-compare {tmp_path}" in output


def test_a_killed_job_ends_the_sweep_instead_of_hanging(slurm_env, tmp_path):
    sweep = start_sweep(slurm_env, "trainer.max_epochs=500", "model.hidden_size=16", f"hydra.sweep.dir={tmp_path}")
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "0" / "checkpoints" / "last.ckpt").is_file():  # running and past its first epoch
            assert sweep.poll() is None and time.monotonic() < deadline, "the job never started training"
            time.sleep(1)
        slurm("scancel", job_ids(tmp_path)[0], env=slurm_env)
        stdout, stderr = sweep.communicate(timeout=180)
    finally:
        sweep.kill()
    output = stdout + stderr
    assert sweep.returncode == 1
    assert "1 of 1 sweep jobs failed" in output and "job #0" in output and "CANCELLED" in output


def release_requeued(job: str, env: dict, timeout: float = 60) -> None:
    """slurmctld holds a requeued job for 120 s (Reason=BeginTime) before it may start again; on a busy cluster
    that wait is lost among others, here it would be two idle minutes of the suite. Once the job is back in
    the queue, its start time is set to now (what the 120 s would end in anyway)."""
    deadline = time.monotonic() + timeout
    while True:
        state = slurm("squeue", "-h", "-j", job, "-o", "%T|%r", env=env).strip()
        if state == "PENDING|BeginTime":
            slurm("scontrol", "update", f"JobId={job}", "StartTime=now", env=env)
            return
        assert time.monotonic() < deadline, f"the requeued job {job} never came back to the queue: {state!r}"
        time.sleep(0.5)


def test_a_preempted_job_is_requeued_and_resumes_from_its_last_checkpoint(slurm_env, tmp_path):
    epochs = 10
    sweep = start_sweep(slurm_env, f"trainer.max_epochs={epochs}", "data.source.groups=8", "model.hidden_size=64",
                        f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    try:
        last = tmp_path / "0" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 180
        while not last.is_file():
            assert sweep.poll() is None and time.monotonic() < deadline, "the job never wrote last.ckpt"
            time.sleep(0.5)
        # What a preemption does on a cluster with PreemptMode=REQUEUE: kill the job and queue it again.
        job = job_ids(tmp_path)[0]
        slurm("scontrol", "requeue", job, env=slurm_env)
        release_requeued(job, slurm_env)
        _, stderr = sweep.communicate(timeout=300)
    finally:
        sweep.kill()
    assert sweep.returncode == 0, stderr[-3000:]
    log = (tmp_path / "0" / "train.log").read_text() + "".join(p.read_text() for p in (tmp_path / ".submitit").glob("*/*.err"))
    assert "Restoring states from the checkpoint path" in log, "the requeued job started from scratch"
    report = json.loads((tmp_path / "0" / "val_metrics.json").read_text())
    assert report["epoch"] == epochs


def submitted(sweep: Path) -> list[str]:
    """SLURM ids of a sweep's jobs, also those that never ran (their .submitit/<id> folder exists at submission)."""
    folder = sweep / ".submitit"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_a_job_that_can_never_start_ends_the_sweep_with_the_reason(slurm_env, tmp_path):
    """slurm_t4's defaults (4 CPUs) on the dev node (fewer CPUs): the job pends with PartitionConfig forever;
    the sweep must say so, cancel it and end, not wait in silence."""
    overrides = [o for o in ON_DEV_CLUSTER if "cpus_per_task" not in o]  # the documented default: 4 CPUs
    start = time.monotonic()
    try:
        done = run_cli("train", "-m", *overrides, *QUICK, f"hydra.sweep.dir={tmp_path}", env=slurm_env, timeout=240)
    finally:
        ids = submitted(tmp_path)
        if ids:
            slurm("scancel", *ids, env=slurm_env)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and time.monotonic() - start < 200, output[-3000:]
    assert "can never start, SLURM says PartitionConfig" in output and "Traceback" not in output, output[-3000:]
    cpus = slurm("sinfo", "-h", "-p", "dev", "-o", "%c", env=slurm_env).strip()
    assert f"nodes of partition dev have ({cpus} CPUs" in output and "asked: cpus_per_task=4" in output
    assert "lower hydra.launcher.cpus_per_task" in output and "1 of 1 sweep jobs failed" in output
    assert ids and all(s.startswith("CANCELLED") for s in states(ids, slurm_env).values()), "it must not stay queued"


def test_slurms_refusal_at_submission_is_one_clear_error(slurm_env, tmp_path):
    done = run_cli("train", "-m", *ON_DEV_CLUSTER, "hydra.launcher.mem_gb=100000", *QUICK, f"hydra.sweep.dir={tmp_path}",
                   env=slurm_env, timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert "SLURM refused the sweep (1 jobs) at submission: sbatch: error: Memory specification can not be satisfied" in output
    assert output.count("Memory specification can not be satisfied") == 1, output  # sbatch's own stderr not echoed
    assert "check hydra.launcher.partition, cpus_per_task, mem_gb" in output


def test_pending_jobs_and_their_reason_are_reported_while_the_sweep_waits(slurm_env, tmp_path):
    poll_s = float(slurm_env["MUSCLEVISION_SLURM_POLL_S"])
    cpus = slurm("sinfo", "-h", "-p", "dev", "-o", "%c", env=slurm_env).strip()
    blocker = slurm(
        "sbatch", "--parsable", f"--cpus-per-task={cpus}", "--output=/dev/null", "--wrap", "sleep 300", env=slurm_env
    ).strip()
    sweep = start_sweep(slurm_env, f"hydra.sweep.dir={tmp_path}")
    try:
        deadline = time.monotonic() + 120
        while True:  # the sweep's job waits behind the blocker
            queue = slurm("squeue", "-h", "-o", "%i|%T|%r", env=slurm_env).splitlines()
            if any(line.endswith("|PENDING|Resources") and not line.startswith(blocker) for line in queue):
                break
            assert sweep.poll() is None and time.monotonic() < deadline, f"no pending sweep job: {queue}"
            time.sleep(0.5)
        time.sleep(2 * poll_s + 1)  # the launcher reads the queue every poll_s
        slurm("scancel", blocker, env=slurm_env)
        stdout, stderr = sweep.communicate(timeout=240)
    finally:
        sweep.kill()
        subprocess.run(["scancel", blocker], capture_output=True, env={**os.environ, **slurm_env})  # if still queued
    output = stdout + stderr
    assert sweep.returncode == 0, output[-3000:]
    assert "waiting for 1 of 1 jobs: 1 pending (Resources)" in output and "waiting for 1 of 1 jobs: 1 running" in output
    assert f"the job is done: musclevision-compare {tmp_path}" in output, output[-2000:]


def test_sharded_extraction_array_on_the_cluster(slurm_env, ucf_videos, tmp_path):
    clips = SHORT_CLIPS[:4]  # two per array task
    videos = link_clips(ucf_videos, clips, tmp_path / "videos")
    cache = tmp_path / "cache"
    done = subprocess.run(
        ["sbatch", "--wait", "--array=0-1", "--cpus-per-task=1", f"--output={tmp_path}/extract-%a.log",
         str(project_root() / "slurm" / "extract_array.sbatch"), f"video_root={videos}", f"cache_dir={cache}"],
        capture_output=True, text=True, cwd=project_root(), timeout=300,
        env={**os.environ, **slurm_env, "MUSCLEVISION_BIN": str(BIN)},
    )  # fmt: skip
    logs = "".join(p.read_text() for p in tmp_path.glob("extract-*.log"))
    assert done.returncode == 0, done.stderr + logs
    records = [json.loads(line) for line in (cache / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["video_id"] for r in records) == sorted(clips)
    assert all(r["status"] == "ok" for r in records)
    for task in (0, 1):  # each array task extracted two of the four clips (its shard)
        assert "2 selected: 2 ok" in " ".join((tmp_path / f"extract-{task}.log").read_text().split()), logs


def test_optuna_search_with_the_local_launcher(tmp_path):
    trials = ["hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1"]  # one random, one from TPE
    done = run_cli("train", "hparams_search=optuna", *QUICK, *trials, f"hydra.sweep.dir={tmp_path}", "hydra/launcher=local",
                   timeout=600)  # fmt: skip
    assert_ok(done)
    results = (tmp_path / "optimization_results.yaml").read_text()
    assert "best_params" in results and "best_value" in results
    assert len([p for p in tmp_path.iterdir() if p.name.isdigit() and (p / "val_metrics.json").is_file()]) == 2
    compare = run_cli("compare", str(tmp_path))
    assert_ok(compare)
    assert json.loads((tmp_path / "best.json").read_text())["value"] > 0
