"""Helpers shared by the web demo tests: tiny models, servers, clips, page polling."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from headless import CHROMIUM, CHROMIUM_ARGS, fake_camera_args  # noqa: F401 (re-exported for the tests)

from musclevision.card import CARD_FORMAT, validate_card
from musclevision.paths import assets_dir, project_root, sha256_file

ROOT = project_root()
ARTIFACTS = ROOT / "test-artifacts" / "web"
CLASSES = ["BenchPress", "BodyWeightSquats", "Lunges", "PushUps", "WallPushups"]


def require_tool(path_or_name: str, what: str) -> str:
    found = shutil.which(path_or_name)
    if not found:
        pytest.fail(f"{what} ({path_or_name}) is not installed: run `make system-deps`", pytrace=False)
    return found


def write_tiny_export(
    directory: Path,
    classes=tuple(CLASSES),
    window: int = 8,
    variant: str = "full",
    world: bool = False,
    favour: str | None = None,
    name: str = "tiny",
    bundle_sha256: str | None = None,
) -> Path:
    """A tiny ONNX classifier following the export contract + its model card; returns the card path.

    mean over time of the NaN-zeroed landmarks -> linear -> softmax. With ``favour`` the bias
    makes that class win with probability ~1 whatever the input (to test recognised-exercise
    mechanics without a trained model); without it all classes stay near 1/K (never recognised).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = len(classes)
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    inputs = [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["batch", "time", 33, 4])]
    if world:
        inputs.append(helper.make_tensor_value_info("world", TensorProto.FLOAT, ["batch", "time", 33, 3]))
    inits.append(numpy_helper.from_array(np.zeros((), np.float32), "zero"))
    inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), "flat"))
    terms = []
    for inp, width in [("landmarks", 4)] + ([("world", 3)] if world else []):
        w = (rng.standard_normal((33 * width, k)) * 0.01).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"{inp}_w"))
        nodes += [
            helper.make_node("IsNaN", [inp], [f"{inp}_isnan"]),
            helper.make_node("Where", [f"{inp}_isnan", "zero", inp], [f"{inp}_clean"]),
            helper.make_node("ReduceMean", [f"{inp}_clean"], [f"{inp}_mean"], axes=[1], keepdims=0),
            helper.make_node("Reshape", [f"{inp}_mean", "flat"], [f"{inp}_flat"]),
            helper.make_node("MatMul", [f"{inp}_flat", f"{inp}_w"], [f"{inp}_logits"]),
        ]
        terms.append(f"{inp}_logits")
    bias = np.zeros(k, np.float32)
    if favour is not None:
        bias[list(classes).index(favour)] = 20.0
    inits.append(numpy_helper.from_array(bias, "bias"))
    if len(terms) == 2:
        nodes.append(helper.make_node("Add", terms, ["logits_sum"]))
        terms = ["logits_sum"]
    nodes += [
        helper.make_node("Add", [terms[0], "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", k])
    graph = helper.make_graph(nodes, name, inputs, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, directory / f"{name}.onnx")
    card_inputs = [{"name": "landmarks", "shape": ["batch", "time", 33, 4], "dtype": "float32", "missing": "nan"}]
    if world:
        card_inputs.append({"name": "world", "shape": ["batch", "time", 33, 3], "dtype": "float32", "missing": "nan"})
    bundle = f"pose_landmarker_{variant}.task"
    card = {
        "format": CARD_FORMAT,
        "name": name,
        "onnx": f"{name}.onnx",
        "classes": list(classes),
        "inputs": card_inputs,
        "outputs": [{"name": "probabilities", "shape": ["batch", k], "dtype": "float32"}],
        "opset": 17,
        "window_policy": {"fps": 25.0, "window": window, "min_detected": 1, "smoothing_s": 0.3, "threshold": 0.6},
        "pose_model": {
            "variant": variant,
            "bundle": bundle,
            "bundle_sha256": bundle_sha256 or sha256_file(assets_dir() / "pose" / bundle),
            "mediapipe": "1.2.3",
        },
        "training": {"data_kind": "real", "note": "tiny test model"},
        "metrics": {},
    }
    validate_card(card)  # the test model follows the same contract as exported ones
    path = directory / f"{name}.json"
    path.write_text(json.dumps(card, indent=2))
    return path


@contextmanager
def serving(server):
    """``server`` (from ``serve.make_server``) serving in a background thread until the block ends; yields it."""
    stop = threading.Event()
    # Off the main thread Hypercorn cannot install its Ctrl+C handlers: it stops when `stop` is set instead.
    thread = threading.Thread(target=asyncio.run, args=(server.serve(partial(asyncio.to_thread, stop.wait)),), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()


@contextmanager
def serve_in_thread(card: Path, **options):
    """musclevision-serve in this process on a free port (``options`` for make_server); yields the server (``.url``)."""
    from musclevision.web.serve import load_site, make_server

    with serving(make_server(load_site(card), "127.0.0.1", 0, **options)) as server:
        yield server


@contextmanager
def serve_subprocess(card: Path, timeout: float = 30.0):
    """The real CLI (`python -m musclevision.web.serve --port 0`); yields the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "musclevision.web.serve", "--port", "0", "--export", str(card)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines, deadline, url = [], time.monotonic() + timeout, None
        while url is None:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"musclevision-serve exited ({proc.wait()}): {''.join(lines)}{proc.stderr.read()}")
            lines.append(line)
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = match.group(1) if match else None
            if time.monotonic() > deadline:
                raise AssertionError(f"musclevision-serve printed no URL within {timeout}s: {''.join(lines)}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def convert_clip(ffmpeg: str, source: Path, target: Path, seconds: float | None = None) -> Path:
    """A real clip as .y4m (fake webcam; Chromium loops it) or .webm (file input), in a temp dir."""
    if not source.is_file():
        pytest.fail(f"test clip {source} is missing (the shared UCF101 exercise clips)", pytrace=False)
    cmd = [ffmpeg, "-v", "error", "-y", "-i", str(source), "-an"]
    if seconds:
        cmd += ["-t", str(seconds)]
    if target.suffix == ".y4m":
        cmd += ["-pix_fmt", "yuv420p", "-r", "25"]
    else:
        cmd += ["-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8"]
    subprocess.run(cmd + [str(target)], check=True, timeout=120)
    return target


def foreign_requests(urls: list[str]) -> list[str]:
    """The URLs that are not on 127.0.0.1 (data: and same-origin blob: URLs are local)."""
    bad = []
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme == "data":
            continue
        if parsed.scheme == "blob":
            parsed = urlparse(url[len("blob:") :])
        if parsed.hostname != "127.0.0.1":
            bad.append(url)
    return bad


def record_requests(page) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    return urls


def watch_errors(page) -> list[str]:
    """Uncaught exceptions, the page's own error reports, and Content-Security-Policy refusals
    (a request the CSP blocks is never made, so it would not show up in record_requests)."""
    errors: list[str] = []

    def on_console(msg):
        text = msg.text
        if (msg.type == "error" and "[musclevision]" in text) or "Content Security Policy" in text:
            errors.append(text)

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    return errors


def stats(page) -> dict:
    return page.evaluate("() => window.musclevision.snapshot()")


def wait_for(page, predicate_js: str, timeout_s: float, what: str) -> dict:
    """Poll ``predicate_js`` (a JS function of the stats snapshot) until true; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    snap = None
    while time.monotonic() < deadline:
        snap = page.evaluate("() => window.musclevision ? window.musclevision.snapshot() : null")
        if snap is not None and page.evaluate(f"(s) => ({predicate_js})(s)", snap):
            return snap
        time.sleep(0.25)
    brief = {k: snap.get(k) for k in ("ready", "state", "error", "sourceError", "frames", "fps", "label")} if snap else None
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; page stats: {brief}")


def wait_ready(page, timeout_s: float = 60) -> dict:
    snap = wait_for(page, "(s) => s.ready || s.error", timeout_s, "the page to load its models")
    assert not snap["error"], f"page failed to start: {snap['error']}"
    return snap
