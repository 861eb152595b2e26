"""Chromium flags for driving the page headless (the web tests and benchmarks/bench_page.py, on machines without a GPU).

WebGL2, which MediaPipe needs, still comes from SwiftShader with --disable-gpu; the background
networking flags keep the browser itself from calling home, so a test can demand that every
request stays on 127.0.0.1. Never download a browser: use Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("MUSCLEVISION_CHROMIUM", "/usr/bin/chromium")  # Debian's; never a downloaded browser
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--mute-audio",
]  # fmt: skip


def fake_camera_args(y4m: Path | None, auto_accept: bool = True) -> list[str]:
    """A fake webcam (playing ``y4m`` in a loop when given) and, optionally, camera permission granted."""
    args = ["--use-fake-device-for-media-stream"]
    if auto_accept:
        args.append("--use-fake-ui-for-media-stream")
    if y4m is not None:
        args.append(f"--use-file-for-fake-video-capture={y4m}")
    return args
