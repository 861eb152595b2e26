"""musclevision-serve: what it serves (and with which MIME type), what it refuses, and its start-up errors."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from web_helpers import serve_subprocess, serving

from musclevision.card import CARD_FORMAT
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
    with serving(serve.make_server(site, "127.0.0.1", 0)) as srv:
        yield srv


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


def test_large_files_are_streamed_whole(server, site):
    """Files above SMALL_FILE take the streaming path: same bytes, length, ETag and 304."""
    wasm = site.vendor_dir / "onnxruntime-web" / "dist" / "ort-wasm-simd-threaded.wasm"
    data = os.urandom(serve.SMALL_FILE * 3 + 12345)
    wasm.write_bytes(data)
    path = "/vendor/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"
    status, headers, body = raw_request(server, "GET", path)
    assert status == 200 and body == data and headers["content-type"] == "application/wasm"
    assert raw_request(server, "HEAD", path)[1]["content-length"] == str(len(data))
    assert raw_request(server, "GET", path, {"If-None-Match": headers["etag"]})[0] == 304


def test_conditional_get(server):
    status, headers, _ = raw_request(server, "GET", "/js/app.js")
    assert status == 200 and headers["etag"]
    status, _, body = raw_request(server, "GET", "/js/app.js", {"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""


def test_requests_are_not_logged_by_default(site, capfd):
    with serving(serve.make_server(site, "127.0.0.1", 0)) as srv:
        urllib.request.urlopen(srv.url + "style.css").read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(srv.url + "missing.css")
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
        (lambda c: {**c, "onnx": "tiny.bin"}, "onnx"),
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


def test_a_model_trained_on_synthetic_data_is_announced(card, fake_assets):
    """The card's warning (written by the exporter for synthetic training data) is printed by the server at start."""
    from musclevision.card import SYNTHETIC_WARNING

    data = json.loads(card.read_text())
    data["training"] = {"data_kind": "synthetic", "warning": SYNTHETIC_WARNING}
    card.write_text(json.dumps(data))
    site = serve.load_site(card, assets=fake_assets)
    assert site.warnings == [f"model {data['name']!r}: {SYNTHETIC_WARNING}"]


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


# ------------------------------------------------------------------ every response carries the security headers
def assert_security_headers(headers: dict, what) -> None:
    for key, value in serve.SECURITY_HEADERS.items():
        assert headers.get(key.lower()) == value, (what, key, headers)


@pytest.mark.parametrize(
    "method, path, extra, status",
    [
        ("GET", "/", {}, 200),
        ("HEAD", "/model/card.json", {}, 200),
        ("GET", "/nope.js", {}, 404),
        ("HEAD", "/nope.js", {}, 404),
        ("GET", "/vendor/..%2f..%2fsecret.txt", {}, 400),
        ("POST", "/", {"Content-Length": "0"}, 405),
        ("DELETE", "/nope", {}, 405),
        ("OPTIONS", "/", {}, 405),
        ("CONNECT", "example.com:443", {}, 405),
    ],
)
def test_security_headers_on_every_response(server, method, path, extra, status):
    got, headers, body = raw_request(server, method, path, extra)
    assert got == status, (method, path, got)
    assert_security_headers(headers, (method, path))
    if status >= 400:
        assert headers["content-type"].startswith("text/plain") and headers["cache-control"] == "no-store"
        assert body == (b"" if method == "HEAD" else f"{status} {http.client.responses[status]}\n".encode())


def test_security_headers_on_not_modified(server):
    _, headers, _ = raw_request(server, "GET", "/style.css")
    status, not_modified, _ = raw_request(server, "GET", "/style.css", {"If-None-Match": headers["etag"]})
    assert status == 304
    assert_security_headers(not_modified, "304")


def exchange(server_or_address, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; everything the server answers until it closes the connection."""
    address = server_or_address if isinstance(server_or_address, tuple) else server_or_address.server_address[:2]
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_head(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n",
        b"GET / HTTP/1.1\r\nA header without a colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)) + b"\r\n\r\n",  # a TLS hello on the http port
    ],
    ids=["garbage", "extra-word", "bad-length", "no-colon", "no-host", "huge-header", "tls-hello"],
)
def test_malformed_requests_get_a_plain_error_with_the_security_headers(server, data):
    raw = exchange(server, data)
    status, headers, body = parse_head(raw)
    assert 400 <= status < 500, raw[:200]
    assert_security_headers(headers, data[:20])
    assert b"<html" not in body.lower() and b"<!doctype" not in body.lower()


def read_response(reader) -> tuple[int, dict, bytes] | None:
    """One response from a connection's file (None if the server closed it)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return None
        head += line
    status, headers, _ = parse_head(head)
    return status, headers, reader.read(int(headers.get("content-length", 0)))


def test_get_with_a_body_is_not_parsed_as_a_second_request(server):
    """A request hidden in a GET's body is never answered; the next real request on the connection is."""
    smuggled = b"GET /smuggled.js HTTP/1.1\r\nHost: x\r\n\r\n"
    request = b"GET /js/app.js HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled
    with socket.create_connection(server.server_address[:2], timeout=10) as sock, sock.makefile("rb") as reader:
        sock.sendall(request)
        status, headers, _ = read_response(reader)
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        try:
            sock.sendall(b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n")
            second = read_response(reader)
        except ConnectionError:
            second = None  # the server closed the connection instead: also never a second response
        if second is not None:
            assert second[0] == 200 and second[1]["content-type"].startswith("text/css"), second[:2]


# ------------------------------------------------------------------ files the card names must stay in their folders
def test_card_files_linking_out_of_their_folder_are_refused_at_start(card, fake_assets, tmp_path):
    onnx = card.parent / "tiny.onnx"
    onnx.rename(tmp_path / "elsewhere.onnx")
    onnx.symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(serve.ServeError, match="outside") as exc:
        serve.load_site(card, assets=fake_assets)
    assert str(onnx) in str(exc.value) and str(card) in str(exc.value)

    onnx.unlink()
    (tmp_path / "elsewhere.onnx").rename(onnx)
    bundle = fake_assets / "pose" / "pose_landmarker_full.task"
    bundle.rename(tmp_path / "bundle.task")
    bundle.symlink_to(tmp_path / "bundle.task")
    with pytest.raises(serve.ServeError, match="outside") as exc:
        serve.load_site(card, assets=fake_assets)
    assert str(bundle) in str(exc.value) and "make setup" in str(exc.value)


def test_card_files_swapped_for_links_out_of_their_folder_are_not_served(server, site, tmp_path):
    """After start-up, the card, the ONNX model or the bundle replaced by a link to a file elsewhere: 404."""
    secret = tmp_path / "secret.txt"
    for path, url in [
        (site.onnx_path, "/model/tiny.onnx"),
        (site.card_path, "/model/card.json"),
        (site.bundle_path, "/models/pose/pose_landmarker_full.task"),
    ]:
        assert raw_request(server, "GET", url)[0] == 200
        path.unlink()
        path.symlink_to(secret)
        status, _, body = raw_request(server, "GET", url)
        assert status == 404, (url, status)
        assert SECRET.encode() not in body


# ------------------------------------------------------------------ slow and idle clients, listen backlog
LIMITED_SERVER = """
import asyncio
import sys
from musclevision.web import serve
site = serve.load_site(sys.argv[1], assets=sys.argv[2])
server = serve.make_server(site, "127.0.0.1", 0, idle_timeout=float(sys.argv[3]))
print(server.url, flush=True)
asyncio.run(server.serve())
"""


@pytest.fixture
def limited_server(card, fake_assets):
    """limited_server(open_files, idle_timeout) -> (process, (host, port)): a server process allowed that many files."""
    import resource

    procs = []

    def start(open_files: int, idle_timeout: float):
        limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))  # noqa: E731
        proc = subprocess.Popen(
            [sys.executable, "-c", LIMITED_SERVER, str(card), str(fake_assets), str(idle_timeout)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        procs.append(proc)
        url = proc.stdout.readline()
        assert url.startswith("http://127.0.0.1:"), f"the server did not start ({proc.poll()}): {proc.stderr.read()}"
        return proc, ("127.0.0.1", int(url.strip().rstrip("/").rsplit(":", 1)[1]))

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            proc.wait(10)


def get_status(address, path: str, timeout: float) -> int:
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def connect_many(address, count: int, wait_s: float) -> tuple[list[socket.socket], int]:
    """``count`` non-blocking connects; the sockets and how many completed within ``wait_s``."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(address)
        socks.append(s)
    pending, deadline = set(socks), time.monotonic() + wait_s
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], list(pending), [], max(0.0, deadline - time.monotonic()))
        pending -= set(writable)
    connected = [s for s in socks if s not in pending and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
    return socks, len(connected)


def wait_closed(socks: list[socket.socket], seconds: float) -> int:
    """How many of ``socks`` the server has not closed ``seconds`` from now (it answers nothing on them)."""
    open_, deadline = set(socks), time.monotonic() + seconds
    while open_ and time.monotonic() < deadline:
        readable, _, _ = select.select(list(open_), [], [], min(1.0, max(0.0, deadline - time.monotonic())))
        for s in readable:
            try:
                data = s.recv(4096)
            except ConnectionError:
                data = b""
            assert data == b"", f"the server answered a request that was never completed: {data[:80]!r}"
            open_.discard(s)
    return len(open_)


def idle_clients(address, count: int) -> list[socket.socket]:
    """``count`` connections: half send nothing, half the start of a request and never the rest."""
    socks, connected = connect_many(address, count, 10)
    assert connected == count
    for s in socks[::2]:
        s.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    return socks


def test_idle_clients_do_not_delay_requests(limited_server):
    """250 idle and half-sent connections: a normal request is answered while they are all still open."""
    _, address = limited_server(1024, 30.0)
    socks = idle_clients(address, 250)
    try:
        assert get_status(address, "/style.css", timeout=10) == 200
        assert wait_closed(socks, 0) == 250
    finally:
        for s in socks:
            s.close()


def test_idle_clients_beyond_the_file_limit_time_out(limited_server):
    """300 idle and half-sent connections against a server allowed 256 open files: a normal request is
    still answered, and the server closes every one of them after its idle timeout, with one warning."""
    proc, address = limited_server(256, 1.0)
    socks = idle_clients(address, 300)
    try:
        assert get_status(address, "/style.css", timeout=15) == 200
        assert wait_closed(socks, 30) == 0, "idle connections still open after 30 s"
    finally:
        for s in socks:
            s.close()
    proc.terminate()
    assert proc.wait(10) == 0
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and stderr.count("Too many open files") == 1, stderr


def test_listen_backlog_holds_a_burst(limited_server):
    """While the server cannot accept (stopped), the kernel still completes 200 connections for it."""
    proc, address = limited_server(1024, 5.0)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        socks, connected = connect_many(address, 200, 3)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    for s in socks:
        s.close()
    assert connected == 200, f"only {connected} of 200 connections completed: listen backlog too small"
    assert get_status(address, "/style.css", timeout=15) == 200


# ------------------------------------------------------------------ TLS
def test_tls(site, certificate):
    """https with our headers; silent or plain-http clients on the https port are dropped."""
    cert, key = certificate
    srv = serve.make_server(site, "127.0.0.1", 0, certfile=str(cert), keyfile=str(key), idle_timeout=1.0)
    with serving(srv):
        assert srv.url.startswith("https://127.0.0.1:")
        silent = socket.create_connection(srv.server_address)  # never starts the TLS handshake
        with silent:
            assert wait_closed([silent], 15) == 0, "a silent client on the https port is never dropped"
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(srv.url + "model/card.json", context=context, timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["format"] == CARD_FORMAT
            assert_security_headers({k.lower(): v for k, v in response.headers.items()}, "https")
        raw = exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain http on the https port: no answer, no crash
        assert not raw.startswith(b"HTTP/1.1 200")
        with urllib.request.urlopen(srv.url, context=context, timeout=10) as response:
            assert response.status == 200


def test_bad_certificate(site, tmp_path):
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(serve.ServeError, match=r"cannot load the TLS certificate .* \(no --keyfile") as exc:
        serve.make_server(site, "127.0.0.1", 0, certfile=str(bogus))
    assert str(bogus) in str(exc.value)


# ------------------------------------------------------------------ the command line
@pytest.mark.parametrize(
    "case, expected",
    [
        ("bad-card", "window_policy.window"),
        ("port-in-use", "pick another --port"),
        ("bad-port", "is not a port number"),
        ("bad-cert", "cannot load the TLS certificate"),
        ("keyfile-alone", "--keyfile needs --certfile"),
    ],
)
def test_cli_errors_are_one_clear_line(card, tmp_path, assets_ready, capsys, case, expected):
    args = ["--export", str(card), "--port", "0"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if case == "bad-card":
            data = json.loads(card.read_text())
            card.write_text(json.dumps({**data, "window_policy": {**data["window_policy"], "window": 0}}))
        elif case == "port-in-use":
            args += ["--port", str(taken.getsockname()[1])]
        elif case == "bad-port":
            args += ["--port", "70000"]
        elif case == "bad-cert":
            (tmp_path / "cert.pem").write_text("nope")
            args += ["--certfile", str(tmp_path / "cert.pem")]
        elif case == "keyfile-alone":
            args += ["--keyfile", str(tmp_path / "key.pem")]
        try:
            code = serve.main(args)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], errors


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_stops_cleanly_on_ctrl_c(tiny_export, assets_ready, sig):
    card = tiny_export()
    proc = subprocess.Popen(
        [sys.executable, "-m", "musclevision.web.serve", "--port", "0", "--export", str(card)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while "Open http" not in (line := proc.stdout.readline()):
            assert line, f"musclevision-serve exited ({proc.wait()}): {proc.stderr.read()}"
        url = line.split()[1]
        assert urllib.request.urlopen(url, timeout=10).status == 200
        proc.send_signal(sig)
        assert proc.wait(15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
