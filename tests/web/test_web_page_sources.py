"""The page with other sources and failures: no camera, camera denied, model load errors, a video file,
recognised vs unrecognised exercise (tiny models whose answer is known), pose-only mode, phone layout.
"""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from web_helpers import (
    convert_clip,
    fake_camera_args,
    foreign_requests,
    record_requests,
    serve_in_thread,
    stats,
    wait_for,
    wait_ready,
    watch_errors,
)

pytestmark = pytest.mark.integration
SQUATS = "BodyWeightSquats/v_BodyWeightSquats_g10_c02.avi"  # 6.4 s, five clear squats


@pytest.fixture(scope="module")
def browser(launch_browser):
    """Chromium without any camera (the container has none)."""
    return launch_browser()


@pytest.fixture(scope="module")
def squats_webm(ucf_videos, ffmpeg, clip_dir):
    return convert_clip(ffmpeg, ucf_videos / SQUATS, clip_dir / "squats.webm")


@pytest.fixture
def open_page(browser, assets_ready):
    """open_page(card, query) -> (page, requests, errors) on a fresh server for `card`."""
    opened = []

    def open_(card, query="", viewport=(1200, 800), delay_models_s=None):
        server_cm = serve_in_thread(card)
        server = server_cm.__enter__()
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        if delay_models_s:  # a slow network: the classifier's fetch answers that much later
            context.add_init_script(
                "const realFetch = window.fetch; window.fetch = async (...args) => { "
                "if (/\\.onnx$/.test(String((args[0] && args[0].url) || args[0]))) "
                f"await new Promise((r) => setTimeout(r, {delay_models_s * 1000:.0f})); return realFetch(...args); }};"
            )
        page = context.new_page()
        requests, errors = record_requests(page), watch_errors(page)
        opened.append((server_cm, context))
        page.goto(server.url + query)
        return page, requests, errors

    yield open_
    for server_cm, context in opened:
        context.close()
        server_cm.__exit__(None, None, None)


def test_no_camera(open_page, tiny_export):
    page, requests, errors = open_page(tiny_export())
    snap = wait_for(page, "(s) => s.ready && s.sourceError", 60, "the missing-camera message")
    assert snap["state"] == "idle" and "No camera was found" in snap["sourceError"]
    assert "No camera was found" in page.locator("#stage-msg").inner_text()
    assert page.locator("#banner").is_visible()
    assert not foreign_requests(requests) and not errors


def test_camera_denied(launch_browser, tiny_export, assets_ready):
    browser = launch_browser(fake_camera_args(None, auto_accept=False))  # a camera, but no permission
    with serve_in_thread(tiny_export()) as server:
        page = browser.new_page()
        page.goto(server.url)
        snap = wait_for(page, "(s) => s.ready && s.sourceError", 60, "the camera-denied message")
        assert "Camera access was denied" in snap["sourceError"]
        assert "denied" in page.locator("#stage-msg").inner_text()
        page.close()


@pytest.mark.parametrize(
    "route, body, expected",
    [
        ("**/model/card.json", None, "model card could not be loaded"),
        ("**/model/*.onnx", None, "HTTP 404"),
        ("**/model/*.onnx", b"not an onnx model", "could not be loaded by onnxruntime-web"),
        ("**/models/pose/*.task", None, "pose bundle"),
        ("**/models/pose/*.task", b"PK\x03\x04 broken", "pose landmarker could not start"),
        ("**/vendor/tasks-vision/vision_bundle.mjs", None, "tasks-vision could not be loaded"),
    ],
)
def test_model_load_failures_are_shown(browser, tiny_export, assets_ready, route, body, expected):
    with serve_in_thread(tiny_export()) as server:
        page = browser.new_page()
        if body is None:
            page.route(route, lambda r: r.fulfill(status=404, body="404 Not Found\n"))
        else:
            page.route(route, lambda r: r.fulfill(status=200, body=body, content_type="application/octet-stream"))
        page.goto(server.url + "?camera=off")
        snap = wait_for(page, "(s) => s.error || s.ready", 60, "the load error")
        assert not snap["ready"] and snap["state"] == "error"
        assert expected in snap["error"], snap["error"]
        assert page.locator("#banner").is_visible() and expected in page.locator("#banner").inner_text()
        assert page.locator("#status").inner_text() == "Error"
        page.close()


def test_video_file_recognised_exercise_counts_reps(open_page, tiny_export, squats_webm, artifacts_dir):
    """A model that always says BodyWeightSquats: recognised state, reps counted, one logged bout."""
    page, requests, errors = open_page(tiny_export(favour="BodyWeightSquats"), "?camera=off&loop=1")
    wait_ready(page)
    page.set_input_files("#file", str(squats_webm))
    # the bout enters the log once squats have been shown for 1.5 s (session.js), which may come after the 2nd rep
    snap = wait_for(page, "(s) => s.reps.BodyWeightSquats >= 2 && s.log.length > 0", 30, "two squats counted and logged")
    assert snap["source"] == "file" and snap["sourceLabel"] == "squats.webm"
    assert snap["state"] == "exercise" and snap["label"] == "BodyWeightSquats"
    assert snap["probabilities"]["BodyWeightSquats"] > 0.99
    assert sum(snap["reps"].values()) == snap["reps"]["BodyWeightSquats"]
    assert [row["exercise"] for row in snap["log"]] == ["BodyWeightSquats"]
    assert snap["log"][0]["reps"] >= 1
    assert not page.locator("#stage").evaluate("e => e.classList.contains('mirrored')")  # files: not mirrored
    assert page.locator("#label").inner_text() == "BodyWeightSquats"
    page.screenshot(path=str(artifacts_dir / "file-input-squats.png"))
    assert not foreign_requests(requests) and not errors


def test_unrecognised_exercise_counts_nothing(open_page, tiny_export, squats_webm):
    """A model never above the threshold: "unknown" state, no reps (they only count while recognised), no bouts."""
    page, requests, errors = open_page(tiny_export(), "?camera=off&loop=1")
    wait_ready(page)
    page.set_input_files("#file", str(squats_webm))
    wait_for(page, "(s) => s.frames >= 50", 40, "50 processed frames (a few squats)")
    snap = stats(page)
    assert snap["state"] == "unknown" and snap["label"] is None
    assert max(snap["probabilities"].values()) < snap["threshold"]
    assert sum(snap["reps"].values()) == 0 and snap["log"] == []
    assert "Unknown" in page.locator("#label").inner_text()
    # The same frames counted as squats once the user picks the exercise to count:
    page.select_option("#mode", "BodyWeightSquats")
    snap = wait_for(page, "(s) => s.reps.BodyWeightSquats >= 1", 20, "a squat counted in fixed-exercise mode")
    assert snap["mode"] == "BodyWeightSquats" and snap["counting"] == "BodyWeightSquats"
    assert not foreign_requests(requests) and not errors


def test_pose_only_mode(open_page, tiny_export, squats_webm):
    page, requests, errors = open_page(tiny_export(), "?camera=off&classifier=off&loop=1")
    wait_ready(page)
    page.set_input_files("#file", str(squats_webm))
    snap = wait_for(page, "(s) => s.frames >= 20", 30, "20 processed frames")
    assert snap["state"] == "pose_only" and snap["classifierRuns"] == 0 and snap["fps"] > 0
    assert not any(url.endswith(".onnx") or "onnxruntime" in url for url in requests)
    assert page.locator("#clf-ms").inner_text() == "off"
    assert not errors


def test_phone_sized_layout(open_page, tiny_export, squats_webm, artifacts_dir):
    page, requests, errors = open_page(tiny_export(favour="BodyWeightSquats"), "?camera=off&loop=1", viewport=(390, 844))
    wait_ready(page)
    page.set_input_files("#file", str(squats_webm))
    wait_for(page, "(s) => s.frames >= 15", 30, "15 processed frames")
    layout = page.evaluate(
        """() => {
          const r = (id) => document.getElementById(id).getBoundingClientRect();
          return {scroll: document.documentElement.scrollWidth, width: innerWidth,
                  stage: r('stage'), label: r('label'), bars: r('bars'), csv: r('download-csv')};
        }"""
    )
    assert layout["scroll"] <= layout["width"], "horizontal scrolling on a phone-sized screen"
    assert layout["stage"]["width"] >= 0.9 * 390 - 24 and layout["stage"]["right"] <= 390
    assert layout["label"]["top"] >= layout["stage"]["bottom"], "panel should stack below the video"
    assert layout["csv"]["right"] <= 390
    page.screenshot(path=str(artifacts_dir / "phone-layout.png"), full_page=True)
    assert not foreign_requests(requests) and not errors


def test_a_model_trained_on_synthetic_data_says_so(open_page, tiny_export):
    """The card's synthetic-data warning is on screen from the start (issue 10 item 9)."""
    from musclevision.card import SYNTHETIC_WARNING

    card = tiny_export()
    data = json.loads(card.read_text())
    data["training"] = {"data_kind": "synthetic", "warning": SYNTHETIC_WARNING}
    card.write_text(json.dumps(data))
    page, _, errors = open_page(card, "?camera=off")
    snap = wait_ready(page)
    assert any(SYNTHETIC_WARNING in w for w in snap["warnings"]), snap["warnings"]
    assert SYNTHETIC_WARNING in page.inner_text("body")
    assert not errors
    page, _, errors = open_page(card)  # and with no camera: the camera message does not hide it
    wait_for(page, "(s) => s.ready && s.sourceError", 60, "the missing-camera message")
    banner = page.locator("#banner").inner_text()
    assert SYNTHETIC_WARNING in banner and "No camera was found" in banner, banner
    assert not errors


def test_bad_url_parameters_fall_back(open_page, tiny_export):
    page, _, errors = open_page(tiny_export(), "?camera=off&exercise=Cartwheel&threshold=abc")
    snap = wait_ready(page)
    assert snap["mode"] == "auto" and snap["threshold"] == 0.6
    assert any("Cartwheel" in w for w in snap["warnings"])
    assert not errors


def test_model_card_shapes_other_than_the_default(open_page, tiny_export, squats_webm):
    """Any card following the contract: other classes, a longer window, the lite bundle, a world input."""
    card = tiny_export(classes=["Squat", "Plank", "Jump"], window=16, variant="lite", world=True, favour="Squat")
    page, requests, errors = open_page(card, "?camera=off&loop=1")
    wait_ready(page)
    page.set_input_files("#file", str(squats_webm))
    snap = wait_for(page, "(s) => s.classifierRuns >= 5", 40, "five classifier runs")
    assert snap["window"] == 16 and snap["classes"] == ["Squat", "Plank", "Jump"]
    # the window covers (16 - 1) / fps seconds of history before the first run (resampled in time)
    assert snap["frames"] > snap["classifierRuns"] and snap["label"] == "Squat"
    assert any(url.endswith("/models/pose/pose_landmarker_lite.task") for url in requests)
    # the page's reps object and its snapshot, read at the same moment (the video plays on: a rep may end between reads)
    reps, snapshot_reps = page.evaluate(
        "() => [JSON.parse(JSON.stringify(window.musclevision.reps)), window.musclevision.snapshot().reps]"
    )
    assert reps == {"Squat": snapshot_reps["Squat"], "Plank": 0, "Jump": 0}
    assert not errors


def test_the_browser_refuses_other_origins(open_page, tiny_export):
    """The server's Content-Security-Policy: a fetch, script or image from elsewhere is refused by the browser."""
    page, requests, _ = open_page(tiny_export(), "?camera=off")
    failed = {}
    page.on("requestfailed", lambda r: failed.__setitem__(r.url, r.failure))
    wait_ready(page)
    blocked = page.evaluate(
        """async () => {
          const seen = [];
          document.addEventListener('securitypolicyviolation', (e) => seen.push(e.effectiveDirective));
          await fetch('https://cdn.example.com/x.json').catch(() => {});
          const img = new Image(); img.src = 'https://cdn.example.com/pixel.png'; document.body.append(img);
          const s = document.createElement('script'); s.src = 'https://cdn.example.com/x.js'; document.head.append(s);
          await import('https://cdn.example.com/x.mjs').catch(() => {});
          await new Promise((r) => setTimeout(r, 300));
          return seen.sort();
        }"""
    )
    assert set(blocked) == {"connect-src", "img-src", "script-src-elem"}, blocked
    for url in foreign_requests(requests):  # attempted by this test, and none got out
        assert failed.get(url) in ("csp", "net::ERR_BLOCKED_BY_CSP"), (url, failed.get(url))


def test_no_person(open_page, tiny_export, ffmpeg, clip_dir):
    """An empty scene: "No person", nothing counted, nothing logged."""
    empty = clip_dir / "empty.webm"
    if not empty.exists():
        subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=4",
             "-c:v", "libvpx", "-b:v", "500k", "-deadline", "realtime", "-cpu-used", "8", str(empty)],
            check=True, timeout=120,
        )  # fmt: skip
    page, requests, errors = open_page(tiny_export(favour="BodyWeightSquats"), "?camera=off&loop=1")
    wait_ready(page)
    page.set_input_files("#file", str(empty))
    snap = wait_for(page, "(s) => s.frames >= 20", 30, "20 processed frames")
    assert snap["state"] == "no_person" and snap["label"] is None and snap["personFrames"] == 0
    assert sum(snap["reps"].values()) == 0 and snap["log"] == []
    assert page.locator("#label").inner_text() == "No person"
    assert not foreign_requests(requests) and not errors


def test_page_over_https(browser, tiny_export, assets_ready, certificate):
    """With --certfile/--keyfile (a phone's camera on the LAN): the page loads everything over HTTPS, as HTTP/2."""
    cert, key = certificate
    with serve_in_thread(tiny_export(), certfile=str(cert), keyfile=str(key)) as server:
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        requests, errors = record_requests(page), watch_errors(page)
        assert server.url.startswith("https://")
        page.goto(server.url + "?camera=off")
        snap = wait_ready(page)
        assert snap["state"] == "idle" and not errors
        assert page.evaluate("() => performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
        assert any(url.endswith("/model/tiny.onnx") for url in requests) and not foreign_requests(requests)
        context.close()


def test_a_file_plays_once_and_the_panel_stops_at_its_end(open_page, tiny_export, squats_webm, artifacts_dir):
    """A recorded workout is analysed once (looping it would count its reps again and again): at its end nothing is
    processed any more, the log's last bout is closed, and the stats show no rate (not the last frame's)."""
    page, _, errors = open_page(tiny_export(favour="BodyWeightSquats"), "?camera=off")
    wait_ready(page)
    page.evaluate("() => { document.getElementById('video').defaultPlaybackRate = 0.5; }")  # frames for a bout, loaded or not
    page.set_input_files("#file", str(squats_webm))
    wait_for(page, "(s) => s.frames > 0", 30, "the first processed frame")
    snap = wait_for(page, "(s) => s.state === 'idle' && s.source === 'file'", 60, "the end of the 6.4 s video")
    assert snap["log"] and not any(row["ongoing"] for row in snap["log"]), snap["log"]
    assert snap["fps"] == 0 and snap["poseMs"] is None and page.locator("#fps").inner_text() == "–"
    assert page.locator("#pause").is_disabled()  # Resume would play it again and count its reps twice
    assert page.locator("#label").inner_text() == "Video ended" and "session log" in page.locator("#label-sub").inner_text()
    # a file's bouts at their place in the video (its recording time is unknown), not at the time it was played
    assert all(row["start"] is None and row["end"] is None for row in snap["log"]), snap["log"]
    first = snap["log"][0]
    assert 0 <= first["video_start_s"] < first["video_end_s"] <= 6.5, first
    tenths = [math.floor(first[key] * 10 + 0.5) for key in ("video_start_s", "video_end_s")]  # as JS's Math.round
    cells = page.locator("#log tbody tr").last.locator("td").all_inner_texts()  # newest first: the first bout is last
    assert cells[1:3] == [f"{t // 600}:{(t % 600) / 10:04.1f}" for t in tenths], (cells, first)
    page.screenshot(path=str(artifacts_dir / "file-ended.png"))
    page.wait_for_timeout(1500)
    again = stats(page)
    assert again["frames"] == snap["frames"] and again["state"] == "idle", "the file went on playing"
    assert not errors


def test_a_file_that_ends_while_the_models_load_is_analysed_once_they_are_ready(open_page, tiny_export, squats_webm):
    page, _, errors = open_page(tiny_export(favour="BodyWeightSquats"), "?camera=off", delay_models_s=4)
    page.wait_for_selector("#file", state="attached")
    page.evaluate("() => { document.getElementById('video').defaultPlaybackRate = 4; }")  # 1.6 s: over before ready
    page.set_input_files("#file", str(squats_webm))
    page.wait_for_function("() => document.getElementById('video').ended", timeout=30_000)
    assert not stats(page)["ready"]
    snap = wait_for(page, "(s) => s.ready && s.frames > 0 && s.state === 'idle'", 60, "the file analysed, then ended")
    assert snap["source"] == "file" and snap["frames"] > 0
    assert not errors
