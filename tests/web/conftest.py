"""Fixtures for the web demo tests: the server, a real Chromium, real clips as a fake webcam.

Browser tests never skip: without Chromium or ffmpeg they fail and say to run ``make system-deps``.
The live tests use the exported model ``exports/best.json`` unless ``MUSCLEVISION_TEST_EXPORT``
points at another model card; the other browser tests use tiny generated models (``tiny_export``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from web_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, require_tool, write_tiny_export

from musclevision.paths import assets_dir


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_tool(CHROMIUM, "Chromium, needed for the browser tests")


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return require_tool("ffmpeg", "ffmpeg, needed to turn test clips into fake-webcam .y4m files")


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def launch_browser(playwright_instance, chromium):
    """launch_browser(extra_args) -> a Chromium browser (closed at the end of the session)."""
    browsers = []

    def launch(extra_args=()):
        browser = playwright_instance.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS + list(extra_args), headless=True
        )
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        try:
            browser.close()
        except Exception:  # already closed by its test
            pass


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def tiny_export(tmp_path):
    """tiny_export(**kw) -> model card path of a tiny contract-following model in tmp_path."""
    counter = iter(range(1000))

    def make(**kw):
        return write_tiny_export(tmp_path / f"export{next(counter)}", **kw)

    return make


@pytest.fixture(scope="session")
def export_card() -> Path:
    """The model the live tests run: exports/best.json, or MUSCLEVISION_TEST_EXPORT."""
    path = Path(os.environ.get("MUSCLEVISION_TEST_EXPORT") or ROOT / "exports" / "best.json").resolve()
    if not path.is_file():
        pytest.fail(
            f"no exported model at {path}: train and export one (`musclevision-export`), "
            "or set MUSCLEVISION_TEST_EXPORT=<model card json>",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def assets_ready() -> Path:
    assets = assets_dir()
    needed = [assets / "web" / "vendor" / "tasks-vision" / "vision_bundle.mjs", assets / "pose" / "pose_landmarker_full.task"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        pytest.fail(f"page assets missing ({', '.join(missing)}): run `make setup`", pytrace=False)
    return assets


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem)."""
    openssl = require_tool("openssl", "openssl, needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
