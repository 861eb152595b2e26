"""The page's engine (``web/static/js/engine.js``) run offline in Node 20 on recorded keypoints.

One Node process per batch (``engine_runner.mjs``): the model card and the ONNX model (onnxruntime-web,
the page's runtime) are loaded once, then clips go in one at a time through a temporary binary file
and come back as one JSON line each: the per-frame trace (state, displayed exercise, smoothed and raw
probabilities), the rep events and the session log, exactly as the page would have made them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musclevision.card import CardError, load_card
from musclevision.paths import PACKAGE_DIR, project_root

RUNNER = PACKAGE_DIR / "replay" / "engine_runner.mjs"
CONTRACT = PACKAGE_DIR / "web" / "static" / "js" / "generated" / "contract.js"
ORT_MODULE = Path("node_modules") / "onnxruntime-web" / "dist" / "ort.wasm.min.mjs"


class ReplayError(RuntimeError):
    """Replay cannot run as asked (no Node, no model, a broken card); the message says what to do."""


@dataclass
class Keypoints:
    """One recorded sequence: what the page would have got from PoseLandmarker, frame by frame."""

    video_id: str
    image: np.ndarray  # [T, 33, 4] float32, NaN rows = no person
    world: np.ndarray  # [T, 33, 3] float32
    timestamps_ms: np.ndarray  # [T] increasing
    width: int = 320
    height: int = 240
    label: str | None = None  # the true exercise, when known
    meta: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return len(self.image)


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise ReplayError(
            "node (Node.js 20+) is not on PATH; install it (Debian: apt-get install nodejs), it runs the page's engine"
        )
    return node


def ort_module() -> Path:
    path = project_root() / ORT_MODULE
    if not path.is_file():
        raise ReplayError(f"{path} is missing: run `make setup` (npm ci) in {project_root()}")
    return path


class EngineProcess:
    """``with EngineProcess(card_path, options) as engine: result = engine.replay(keypoints, mode)``."""

    def __init__(self, card_path: str | Path, options: dict | None = None, engine_dir: str | None = None):
        self.card_path = Path(card_path)
        try:
            card = load_card(self.card_path)
        except CardError as exc:
            raise ReplayError(str(exc)) from None
        self.card = card
        self.onnx = self.card_path.parent / card.onnx
        if not self.onnx.is_file():
            raise ReplayError(
                f"ONNX model {self.onnx} (named by the model card {self.card_path}) is missing: re-run musclevision-export"
            )
        if not CONTRACT.is_file():
            raise ReplayError(f"{CONTRACT} is missing: run `make setup` (it writes the page's contract module)")
        self.options = dict(options or {})
        self.engine_dir = engine_dir  # another copy of the page's modules (web/static/js), e.g. to compare versions
        self.process: subprocess.Popen | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> EngineProcess:
        self.tmp = tempfile.TemporaryDirectory(prefix="musclevision-replay-")
        self.process = subprocess.Popen(
            [node_binary(), str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1,
        )  # fmt: skip
        card = self.card.model_dump(mode="json", exclude_none=True)
        setup = {
            "card": card,
            "onnx": str(self.onnx),
            "ort": str(ort_module()),
            "options": self.options,
            "engine": self.engine_dir,
        }
        ready = self._call(setup)
        if not ready.get("ready"):
            raise ReplayError(f"the engine did not start: {ready}")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
            for stream in (self.process.stdout, self.process.stderr):
                stream.close()
            self.process = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def _call(self, message: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.process.wait(timeout=30)
            error = self.process.stderr.read().strip().splitlines()
            raise ReplayError(f"the Node engine stopped (exit {self.process.returncode}): {error[-1] if error else 'no message'}")
        return json.loads(line)

    def replay(self, clip: Keypoints, mode: str = "auto") -> dict:
        """The engine's answer for one clip (dict with trace, events, rows, csv, json; or {"error": ...})."""
        if mode != "auto" and mode not in self.card.classes:
            raise ReplayError(f"mode={mode!r} is not one of the model's classes ({', '.join(self.card.classes)}) nor 'auto'")
        path = Path(self.tmp.name) / "clip.bin"
        with open(path, "wb") as f:
            f.write(np.ascontiguousarray(clip.timestamps_ms, dtype="<f8").tobytes())
            f.write(np.ascontiguousarray(clip.image, dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(clip.world, dtype="<f4").tobytes())
        try:
            return self._call(
                {
                    "id": clip.video_id,
                    "file": str(path),
                    "frames": clip.frames,
                    "mode": mode,
                    "aspect": clip.width / clip.height if clip.height else 1.0,
                    # the log's wall-clock columns: the recording's own time when the video states it, else left empty
                    "origin_ms": clip.meta.get("recorded_ms"),
                }
            )
        finally:
            os.unlink(path)
