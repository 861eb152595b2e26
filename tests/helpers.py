"""Shared test helpers: the real-data subset, and running the console scripts the way users do.

Tests import from here, never from conftest.py: tests/ and tests/web/ each have a conftest module
of that same name, and which one `import conftest` finds depends on sys.path order (spawned
worker processes that import a test module see a different order and failed on it)."""

from __future__ import annotations

import atexit
import errno
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from musclevision.extract import KeypointCache
from musclevision.extract.exerciser import ExerciserSelector, distinct_people
from musclevision.paths import PACKAGE_DIR, project_root

SHARED_DATA = Path(os.environ.get("MUSCLEVISION_DATA", project_root().parent / "shared" / "data")) / "ucf101-exercise"
# A small real subset: the six clips with the paper authors' reference keypoints, plus two
# clips (two groups) of every class, so data/model tests see all classes and several groups.
REFERENCE_CLIPS = [
    "BodyWeightSquats/v_BodyWeightSquats_g10_c01", "BodyWeightSquats/v_BodyWeightSquats_g11_c01",
    "BodyWeightSquats/v_BodyWeightSquats_g12_c01", "PushUps/v_PushUps_g12_c01", "PushUps/v_PushUps_g13_c01",
    "PushUps/v_PushUps_g14_c01",
]  # fmt: skip
# Two clips of each class beside them, short ones (every Lunges clip of these groups is ~250 frames: one from g20).
EXTRA_CLIPS = [
    "BenchPress/v_BenchPress_g08_c01", "BenchPress/v_BenchPress_g11_c02", "Lunges/v_Lunges_g08_c01",
    "Lunges/v_Lunges_g20_c02", "WallPushups/v_WallPushups_g08_c01", "WallPushups/v_WallPushups_g13_c03",
    "BodyWeightSquats/v_BodyWeightSquats_g08_c03", "PushUps/v_PushUps_g08_c04",
]  # fmt: skip

# make test runs pytest on two pytest-xdist workers (conftest.pytest_xdist_make_scheduler). These modules run whole
# on one worker: the SLURM tests start and stop the dev cluster (a module fixture; two workers would start two
# clusters on one state folder), and the live page sessions are played once per clip and shared by the module's tests.
ONE_WORKER = ("tests/test_sweeps.py", "tests/web/test_web_live.py")

BIN = Path(sys.executable).parent
# A small synthetic dataset: every training test runs in seconds on any machine.
SMALL_SYNTHETIC = ["data=synthetic", "data.source.groups=4", "data.source.clips_per_group=2", "data.split.folds=2",
                   "data.eval_stride=4", "data.batch_size=64"]  # fmt: skip


def run_cli(script: str, *overrides: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run ``musclevision-<script>`` with Hydra overrides; returns the CompletedProcess (never raises).

    The scripts that import PyTorch Lightning run in a fork of a process that imported them already
    (tests/cli_server.py: the same ``main()`` in its own process, ~8 s less each); the others, and every run when
    MUSCLEVISION_TEST_FORK=0, as a fresh process."""
    command = [str(BIN / f"musclevision-{script}"), *overrides]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    cwd = Path(cwd or project_root())
    if script in FORKED_SCRIPTS and os.environ.get("MUSCLEVISION_TEST_FORK", "1") != "0":
        return _FORK_SERVER.run(script, command, cwd, env, timeout)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


FORKED_SCRIPTS = ("train", "eval", "export", "compare", "calibrate")
PRELOADED = ("musclevision.train", "musclevision.evaluate", "musclevision.sweep.compare")  # see tests/cli_server.py


class _ForkServer:
    """One tests/cli_server.py per test process, started on first use, stopped at exit."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.pending = b""  # read from the server, not yet a whole line

    def _reply(self, timeout: float | None = None) -> dict | None:
        """The server's next reply line, or None after ``timeout`` seconds (read unbuffered: select sees it all)."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 65536)
            assert chunk, f"tests/cli_server.py ended (rc {self.proc.wait()})"
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            server = Path(__file__).with_name("cli_server.py")
            self.proc = subprocess.Popen([sys.executable, str(server), *PRELOADED], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, bufsize=0)  # fmt: skip
            self.pending = b""
            assert self._reply().get("ready"), "tests/cli_server.py did not start"
            atexit.register(self.proc.kill)
        return self.proc

    def run(self, script, command, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
        proc = self._start()
        with tempfile.TemporaryDirectory(prefix="cli-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"script": script, "args": command[1:], "cwd": str(cwd), "env": env, "stdout": str(out),
                       "stderr": str(err)}  # fmt: skip
            proc.stdin.write((json.dumps(request) + "\n").encode())
            pid = self._reply()["pid"]
            done = self._reply(timeout)
            if done is None:
                os.kill(pid, signal.SIGKILL)
                self._reply()
                raise subprocess.TimeoutExpired(command, timeout, out.read_text(), err.read_text())
            code = done["returncode"]
            return subprocess.CompletedProcess(command, code, out.read_text(errors="replace"), err.read_text(errors="replace"))


_FORK_SERVER = _ForkServer()


NODE_PRELUDE = """import { readFileSync } from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8") || "null");
const out = (value) => process.stdout.write(JSON.stringify(value));
"""


def run_node(script: str, data=None, timeout: float = 60):
    """Run an ES-module ``script`` in Node 20 (the page's modules import as they are) and return what it ``out()``s.

    ``input`` holds ``data`` (JSON); ``out(value)`` sends one JSON value back (NaN becomes null)."""
    done = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_PRELUDE + script], input=json.dumps(data), capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"node failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def assert_ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"


def link_clips(videos: Path, ids: list[str], root: Path) -> Path:
    """A video folder of symlinks to chosen shared clips (referenced by path, never copied)."""
    for video_id in ids:
        target = root / f"{video_id}.avi"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(videos / f"{video_id}.avi")
    return root


# -- extraction tests (test_extract*.py) ------------------------------------------------------
# The shortest real clips (29-51 frames, ~1 s of landmarking each), for tests that extract.
SHORT_CLIPS = [
    "PushUps/v_PushUps_g16_c04", "PushUps/v_PushUps_g16_c03", "BenchPress/v_BenchPress_g15_c06",
    "Lunges/v_Lunges_g20_c02", "Lunges/v_Lunges_g20_c03", "Lunges/v_Lunges_g20_c01", "Lunges/v_Lunges_g20_c04",
    "BodyWeightSquats/v_BodyWeightSquats_g08_c03", "WallPushups/v_WallPushups_g15_c04",
]  # fmt: skip
# Native chatter of MediaPipe/LiteRT/TFLite/absl that must stay in the workers' log file.
LOG_SPAM = ("XNNPACK", "LiteRT", "W0000", "I0000", "E0000", "Sparsity", "TensorFlow Lite", "INFO: [", "WARNING: [")


EXTRACT_ENV = {"COLUMNS": "250", "PYTHONUNBUFFERED": "1"}  # no rich line wrapping


def extract_overrides(tmp: Path, *overrides: str) -> list[str]:
    # Hydra's run folders go to the test's temp dir, not the checkout's logs/.
    return [f"paths.log_dir={tmp / 'hydra-logs'}", *overrides]


def cli_command(tmp: Path, *overrides: str) -> list[str]:
    """musclevision-extract's command line, for tests that start it with Popen (to kill it)."""
    return [str(BIN / "musclevision-extract"), *extract_overrides(tmp, *overrides)]


def cli_env() -> dict:
    return {**os.environ, **EXTRACT_ENV}


def run_extract(tmp: Path, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_cli("extract", *extract_overrides(tmp, *overrides), timeout=timeout, env=EXTRACT_ENV)


def flat(text: str) -> str:
    """Output with whitespace runs collapsed (rich tables pad and fold)."""
    return re.sub(r"\s+", " ", text)


def manifest_lines(cache_dir: Path) -> list[dict]:
    path = cache_dir / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_clip_consistent(cache: KeypointCache, video_id: str):
    """Shapes, dtypes, NaN pattern and record numbers of one cached clip agree with each other."""
    clip = cache.load(video_id)
    record = clip.record
    t = record.frames_decoded
    assert clip.image.shape == (t, 33, 4) and clip.image.dtype == np.float32, (video_id, clip.image.shape, clip.image.dtype)
    assert clip.world.shape == (t, 33, 3) and clip.world.dtype == np.float32, (video_id, clip.world.shape)
    assert clip.timestamps_ms.shape == (t,) and clip.timestamps_ms.dtype == np.int64
    assert np.all(np.diff(clip.timestamps_ms) > 0), "MediaPipe timestamps must increase strictly"
    image_rows = np.isnan(clip.image).reshape(t, -1)
    world_rows = np.isnan(clip.world).reshape(t, -1)
    # A frame is all-NaN (no person) or all-finite, in image and world together.
    assert np.all(image_rows.all(1) | ~image_rows.any(1)), f"{video_id}: partly-NaN image rows"
    assert np.all(world_rows.all(1) | ~world_rows.any(1)), f"{video_id}: partly-NaN world rows"
    assert np.array_equal(image_rows.all(1), world_rows.all(1)), f"{video_id}: image and world disagree on no-person frames"
    detected = int((~image_rows.all(1)).sum())
    assert record.frames_detected == detected, (video_id, record.frames_detected, detected)
    assert record.detection_rate == pytest.approx(detected / t, abs=1e-4)
    return clip


# -- what the cache holds -------------------------------------------------------------------


# -- full and read-only disks (need root to mount; CI runs as root) ----------------------------
@contextmanager
def mounted(target: Path, *mount_args: str):
    """A file system mounted at ``target`` for the test (a small tmpfs, a read-only bind mount)."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small / read-only file system and needs root (CI runs as root)")
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *mount_args, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


def fill(disk: Path) -> None:
    """Fill the file system of ``disk`` (a file ``filler`` in it) until it is full."""
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    assert shutil.disk_usage(disk).free < 65536


# -- the exerciser rule, in Python and in the page's JS (test_exerciser.py, test_extract_people.py) -------
EXERCISER_JS = PACKAGE_DIR / "web" / "static" / "js" / "exerciser.js"
# Node runs the page's ES module directly: frames on stdin, choices and summary on stdout.
NODE_SELECT = """
import { ExerciserSelector, distinctPeople } from %s;
let text = "";
for await (const chunk of process.stdin) text += chunk;
const rec = JSON.parse(text);
const selector = new ExerciserSelector(rec.width, rec.height, rec.selector);
const people = (f) => f.people.map((p) => Float32Array.from(p));
const distinct = rec.frames.map((f) => distinctPeople(people(f), rec.width, rec.height, rec.selector.gate));
const choices = rec.frames.map((f) => selector.update(people(f), f.t));
console.log(JSON.stringify({ choices, summary: selector.summary(), distinct }));
"""


def select_in_python(recording: dict) -> tuple[list, dict]:
    selector = ExerciserSelector(recording["width"], recording["height"], recording["selector"])
    choices = [selector.update([np.asarray(p, np.float32).reshape(33, 4) for p in f["people"]], f["t"])
               for f in recording["frames"]]  # fmt: skip
    return choices, selector.summary()


def distinct_in_python(recording: dict) -> list[int]:
    """Per frame, how many distinct people the several-people check counts (exerciser.distinct_people)."""
    return [distinct_people([np.asarray(p, np.float32).reshape(33, 4) for p in f["people"]], recording["width"],
                            recording["height"], recording["selector"]["gate"]) for f in recording["frames"]]  # fmt: skip


def select_in_node(recording: dict) -> tuple[list, dict]:
    """The page's rule (exerciser.js) on ``recording``: choices and summary; ``distinct_in_node`` reads the counts."""
    out = _exerciser_in_node(recording)
    return out["choices"], out["summary"]


def distinct_in_node(recording: dict) -> list[int]:
    return _exerciser_in_node(recording)["distinct"]


def _exerciser_in_node(recording: dict) -> dict:
    node = shutil.which("node")
    assert node, "Node 20 is needed for the page's JS tests (make setup installs the npm packages with it)"
    script = NODE_SELECT % json.dumps(EXERCISER_JS.as_uri())
    done = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(recording), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
