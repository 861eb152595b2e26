"""musclevision-serve: what it serves (and with which MIME type), what it refuses, and its start-up errors."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest
from web_helpers import serve_subprocess

from musclevision.web import serve
from musclevision.web.assets import VENDOR_FILES

SECRET = "top-secret-content-outside-the-served-folders"


@pytest.fixture
def fake_assets(tmp_path):
    """An assets/ folder with small stand-ins for every vendor file and the full/lite pose bundles."""
    assets = tmp_path / "assets"
    for package, files in VENDOR_FILES.items():
        for name in files:
            path = assets / "web" / "vendor" / package.split("/")[-1] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"// {package}/{name}\n".encode())
    (assets / "pose").mkdir(parents=True)
    for variant in ("full", "lite"):
        (assets / "pose" / f"pose_landmarker_{variant}.task").write_bytes(b"PK-bundle-" + variant.encode())
    (tmp_path / "secret.txt").write_text(SECRET)
    return assets


@pytest.fixture
def card(tiny_export, fake_assets):
    bundle = fake_assets / "pose" / "pose_landmarker_full.task"
    return tiny_export(bundle_sha256=hashlib.sha256(bundle.read_bytes()).hexdigest())


@pytest.fixture
def site(card, fake_assets):
    return serve.load_site(card, assets=fake_assets)


@pytest.fixture
def server(site):
    srv = serve.make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def raw_request(server, method: str, path: str, headers: dict | None = None):
    """Send ``path`` exactly as given (no client-side normalization); returns (status, headers, body)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize(
    "path, mime",
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/js/app.js", "text/javascript; charset=utf-8"),
        ("/vendor/tasks-vision/vision_bundle.mjs", "text/javascript; charset=utf-8"),
        ("/vendor/tasks-vision/wasm/vision_wasm_internal.js", "text/javascript; charset=utf-8"),
        ("/vendor/tasks-vision/wasm/vision_wasm_internal.wasm", "application/wasm"),
        ("/vendor/onnxruntime-web/dist/ort.wasm.min.mjs", "text/javascript; charset=utf-8"),
        ("/vendor/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm", "application/wasm"),
        ("/model/card.json", "application/json"),
        ("/model/tiny.onnx", "application/octet-stream"),
        ("/models/pose/pose_landmarker_full.task", "application/octet-stream"),
    ],
)
def test_serves_with_mime_type(server, site, path, mime):
    status, headers, body = raw_request(server, "GET", path)
    assert status == 200, (path, status, body[:200])
    assert headers["content-type"] == mime
    assert int(headers["content-length"]) == len(body) > 0
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]
    head_status, head_headers, head_body = raw_request(server, "HEAD", path)
    assert head_status == 200 and head_body == b""
    assert head_headers["content-type"] == mime and head_headers["content-length"] == headers["content-length"]


def test_serves_the_files_named_by_the_card(server, site, card):
    assert raw_request(server, "GET", "/model/card.json")[2] == card.read_bytes()
    assert raw_request(server, "GET", "/model/tiny.onnx")[2] == (card.parent / "tiny.onnx").read_bytes()
    bundle = raw_request(server, "GET", "/models/pose/pose_landmarker_full.task")[2]
    assert bundle == site.bundle_path.read_bytes() == b"PK-bundle-full"


def test_query_string_and_fragment_are_ignored(server):
    status, headers, _ = raw_request(server, "GET", "/?classifier=off&exercise=PushUps")
    assert status == 200 and headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    [
        "/nope.html",
        "/nope",
        "/js/nope.js",
        "/vendor/tasks-vision/missing.mjs",
        "/vendor/onnxruntime-web/dist/ort.all.min.mjs",  # in node_modules, not vendored
        "/model/other.onnx",
        "/model/tiny.json",  # the card is only /model/card.json
        "/models/pose/pose_landmarker_lite.task",  # exists, but the card names the full bundle
        "/models/pose/pose_landmarker_heavy.task",
        "/vendor",
        "/model",
        "/js",
        "/etc/passwd",  # an absolute file path is just a path under the page root
        "/README",  # unknown extension: never served
    ],
)
def test_unknown_paths_are_404(server, path):
    status, headers, body = raw_request(server, "GET", path)
    assert status == 404, (path, status)
    assert headers["content-type"].startswith("text/plain")
    assert body == b"404 Not Found\n"


@pytest.mark.parametrize("path", ["/vendor/", "/js/", "/model/", "/models/pose/", "/vendor/tasks-vision/wasm/"])
def test_no_directory_listing(server, path):
    status, _, body = raw_request(server, "GET", path)
    assert status in (400, 404), (path, status)
    assert b"<a href" not in body and b".wasm" not in body and b".mjs" not in body


TRAVERSALS = [
    "/../secret.txt",
    "/../../secret.txt",
    "/vendor/../../secret.txt",
    "/vendor/../../../etc/passwd",
    "/vendor/tasks-vision/../../../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/%2E%2E/secret.txt",
    "/vendor/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/vendor/..%2f..%2f..%2fsecret.txt",
    "/vendor/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/vendor/%252e%252e/%252e%252e/secret.txt",  # double encoding
    "/vendor/..%5c..%5c..%5csecret.txt",
    "/..\\..\\secret.txt",
    "/model/..%2fcard.json",
    "/models/pose/..%2f..%2fsecret.txt",
    "//etc/passwd",
    "/vendor//etc/passwd",
    "/vendor/tasks-vision/%00.mjs",
    "/./secret.txt",
    "/vendor/./tasks-vision/vision_bundle.mjs",
    "/.hidden.js",
    "/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 dots
    "http://127.0.0.1/etc/passwd",  # absolute-form request target
    "secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_refused(server, path):
    status, _, body = raw_request(server, "GET", path)
    assert status in (400, 404), (path, status)
    assert SECRET.encode() not in body and b"root:" not in body


def test_symlinks_out_of_the_served_folders_are_refused(server, site, fake_assets, tmp_path):
    secret = tmp_path / "secret.txt"
    vendor = fake_assets / "web" / "vendor" / "tasks-vision"
    (vendor / "evil.mjs").symlink_to(secret)
    (vendor / "outside").symlink_to(tmp_path, target_is_directory=True)
    (vendor / "inside.mjs").symlink_to(vendor / "vision_bundle.mjs")  # stays within vendor/: fine
    for path in ("/vendor/tasks-vision/evil.mjs", "/vendor/tasks-vision/outside/secret.txt"):
        status, _, body = raw_request(server, "GET", path)
        assert status == 404, (path, status)
        assert SECRET.encode() not in body
    status, _, body = raw_request(server, "GET", "/vendor/tasks-vision/inside.mjs")
    assert status == 200 and body.startswith(b"// @mediapipe/tasks-vision/vision_bundle.mjs")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_only_get_and_head(server, method):
    status, headers, _ = raw_request(server, method, "/", {"Content-Length": "0"})
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_conditional_get(server):
    status, headers, _ = raw_request(server, "GET", "/js/app.js")
    assert status == 200 and headers["etag"]
    status, _, body = raw_request(server, "GET", "/js/app.js", {"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""


def test_requests_are_not_logged_by_default(site, capfd):
    srv = serve.make_server(site, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        urllib.request.urlopen(srv.url + "style.css").read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(srv.url + "missing.css")
    finally:
        srv.shutdown()
        srv.server_close()
    out, err = capfd.readouterr()
    assert "GET" not in out + err


# ------------------------------------------------------------------ start-up errors
def test_missing_card(tmp_path, fake_assets):
    with pytest.raises(serve.ServeError) as exc:
        serve.load_site(tmp_path / "exports" / "best.json", assets=fake_assets)
    message = str(exc.value)
    assert str(tmp_path / "exports" / "best.json") in message and "musclevision-export" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: "{not json", "cannot be read as JSON"),
        (lambda c: {**c, "format": "something/2"}, "format"),
        (lambda c: {**c, "format": "musclevision-model-card/1"}, "re-export"),
        (lambda c: {**c, "classes": []}, "classes"),
        (lambda c: {**c, "classes": ["A", "A"]}, "classes"),
        (lambda c: {**c, "window_policy": {**c["window_policy"], "window": 0}}, "window_policy.window"),
        (lambda c: {**c, "inputs": [c["inputs"][0] | {"name": "world"}]}, "inputs"),
        (lambda c: {**c, "window_policy": {**c["window_policy"], "threshold": 2}}, "window_policy.threshold"),
        (lambda c: {**c, "onnx": "../elsewhere.onnx"}, "onnx"),
        (lambda c: {**c, "onnx": "/abs/elsewhere.onnx"}, "onnx"),
        (lambda c: {**c, "pose_model": {**c["pose_model"], "bundle": "../../etc/passwd"}}, "pose_model.bundle"),
        (lambda c: {k: v for k, v in c.items() if k != "pose_model"}, "pose_model"),
    ],
)
def test_invalid_card(card, fake_assets, change, expected):
    new = change(json.loads(card.read_text()))
    card.write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(serve.ServeError, match=expected) as exc:
        serve.load_site(card, assets=fake_assets)
    assert str(card) in str(exc.value)


def test_missing_onnx(card, fake_assets):
    (card.parent / "tiny.onnx").unlink()
    with pytest.raises(serve.ServeError) as exc:
        serve.load_site(card, assets=fake_assets)
    assert str(card.parent / "tiny.onnx") in str(exc.value) and "musclevision-export" in str(exc.value)


def test_missing_pose_bundle(card, fake_assets):
    bundle = fake_assets / "pose" / "pose_landmarker_full.task"
    bundle.unlink()
    with pytest.raises(serve.ServeError) as exc:
        serve.load_site(card, assets=fake_assets)
    assert str(bundle) in str(exc.value) and "make setup" in str(exc.value)


def test_missing_vendor_files(card, fake_assets):
    wasm = fake_assets / "web" / "vendor" / "onnxruntime-web" / "dist" / "ort-wasm-simd-threaded.wasm"
    wasm.unlink()
    with pytest.raises(serve.ServeError) as exc:
        serve.load_site(card, assets=fake_assets)
    assert str(wasm) in str(exc.value) and "make setup" in str(exc.value)


def test_bundle_hash_mismatch_is_a_warning(card, fake_assets):
    data = json.loads(card.read_text())
    data["pose_model"]["bundle_sha256"] = "0" * 64
    card.write_text(json.dumps(data))
    site = serve.load_site(card, assets=fake_assets)
    assert len(site.warnings) == 1 and "not the bundle the model was trained with" in site.warnings[0]


def test_port_in_use(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(serve.ServeError, match="pick another --port"):
            serve.make_server(site, "127.0.0.1", port)


def test_cli_exits_with_a_clear_message_when_the_card_is_missing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "musclevision.web.serve", "--export", str(tmp_path / "none.json"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr and str(tmp_path / "none.json") in result.stderr
    assert "musclevision-export" in result.stderr


def test_cli_serves_the_real_assets(tiny_export, assets_ready):
    """The real CLI, the real `make setup` assets: prints the URL, serves the page, the wasm and the bundle."""
    card = tiny_export()
    with serve_subprocess(card) as url:
        with urllib.request.urlopen(url) as response:
            assert response.status == 200 and b"MuscleVision" in response.read()
        request = urllib.request.Request(url + "vendor/tasks-vision/wasm/vision_wasm_internal.wasm", method="HEAD")
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Type"] == "application/wasm"
        bundle = assets_ready / "pose" / "pose_landmarker_full.task"
        request = urllib.request.Request(url + "models/pose/pose_landmarker_full.task", method="HEAD")
        with urllib.request.urlopen(request) as response:
            assert int(response.headers["Content-Length"]) == os.path.getsize(bundle)
