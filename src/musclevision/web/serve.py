"""``musclevision-serve``: serve the offline live demo page, its vendored JS/wasm and one exported model.

    musclevision-serve                        # exports/best.json on http://127.0.0.1:8000/
    musclevision-serve --export exports/other.json --port 8080

Only these paths exist (everything else is 404, there are no directory listings):

    /                       the page (``src/musclevision/web/static/``)
    /vendor/...             pinned tasks-vision / onnxruntime-web files (``assets/web/vendor/``)
    /models/pose/<bundle>   the PoseLandmarker ``.task`` bundle named by the model card
    /model/card.json        the model card given with ``--export``
    /model/<name>.onnx      the ONNX file the card names

Every file the page loads comes from this origin; the Content-Security-Policy sent with every
response makes the browser refuse anything else (no CDN, no telemetry). GET and HEAD only.
The camera needs a secure context: ``http://127.0.0.1`` / ``http://localhost`` are fine on this
machine; to use a phone's camera over the network pass ``--host 0.0.0.0 --certfile/--keyfile``.
"""

from __future__ import annotations

import argparse
import email.utils
import os
import shutil
import ssl
import sys
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from musclevision.card import CardError
from musclevision.card import load_card as load_model_card
from musclevision.extract.pose_bundle import sha256_file
from musclevision.paths import PACKAGE_DIR, assets_dir, project_root

STATIC_DIR = PACKAGE_DIR / "web" / "static"

# Only files with these extensions are ever served.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".task": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}

# Same-origin only, enforced by the browser: the page cannot load or send anything elsewhere.
# 'wasm-unsafe-eval' lets MediaPipe and onnxruntime compile their WebAssembly; blob:/mediastream:
# are the local video file and the camera.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class ServeError(RuntimeError):
    """A problem found before serving (missing card/onnx/bundle/vendor file); the message says what to run."""


def default_export() -> Path:
    return project_root() / "exports" / "best.json"


def _vendor_files() -> list[str]:
    """Paths under /vendor/ the page needs, from the set-up step's list of copied npm files."""
    from musclevision.web.assets import VENDOR_FILES

    return [f"{package.split('/')[-1]}/{name}" for package, files in VENDOR_FILES.items() for name in files]


def load_card(card_path: Path) -> dict:
    """The parsed model card, checked against the one card contract (raises ServeError naming the problem)."""
    if not card_path.is_file():
        raise ServeError(
            f"model card {card_path} not found: export a model with `musclevision-export` (after training), "
            "or pass --export PATH/TO/card.json"
        )
    try:
        return load_model_card(card_path).model_dump(mode="json")
    except CardError as exc:
        raise ServeError(str(exc)) from None


@dataclass
class Site:
    """What the server serves, resolved and checked once at start-up."""

    card_path: Path
    card: dict
    onnx_path: Path
    bundle_path: Path
    vendor_dir: Path
    static_dir: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def onnx_url(self) -> str:
        return "/model/" + self.onnx_path.name

    @property
    def bundle_url(self) -> str:
        return "/models/pose/" + self.bundle_path.name

    def exact_routes(self) -> dict[str, Path]:
        return {
            "/": self.static_dir / "index.html",
            "/model/card.json": self.card_path,
            self.onnx_url: self.onnx_path,
            self.bundle_url: self.bundle_path,
        }


def load_site(
    export: Path | str | None = None,
    assets: Path | str | None = None,
    static: Path | str | None = None,
    check_bundle_hash: bool = True,
) -> Site:
    """Check everything the page will need and return the :class:`Site` to serve (raises ServeError)."""
    card_path = Path(export or default_export()).expanduser().resolve()
    assets = Path(assets).resolve() if assets else assets_dir()
    static_dir = Path(static).resolve() if static else STATIC_DIR
    card = load_card(card_path)

    onnx_path = card_path.parent / card["onnx"]
    if not onnx_path.is_file():
        raise ServeError(f"ONNX model {onnx_path} (named by the model card {card_path}) is missing: re-run `musclevision-export`")
    bundle_name = card["pose_model"]["bundle"]
    bundle_path = assets / "pose" / bundle_name
    if not bundle_path.is_file():
        raise ServeError(
            f"pose bundle {bundle_path} (named by the model card {card_path}) is missing: "
            "run `make setup` (it builds assets/pose/*.task)"
        )
    vendor_dir = assets / "web" / "vendor"
    missing = [str(vendor_dir / name) for name in _vendor_files() if not (vendor_dir / name).is_file()]
    if missing:
        raise ServeError(
            "page vendor file(s) missing: " + ", ".join(missing) + "; run `make setup` (copies the pinned "
            "@mediapipe/tasks-vision and onnxruntime-web files into assets/web/vendor)"
        )
    if not (static_dir / "index.html").is_file():
        raise ServeError(f"{static_dir / 'index.html'} is missing: the musclevision package is incomplete, reinstall it")

    warnings = [f"model {card['name']!r}: {card['training']['warning']}"] if card["training"].get("warning") else []
    expected = card["pose_model"].get("bundle_sha256")
    if check_bundle_hash and expected:
        actual = sha256_file(bundle_path)
        if actual != expected:
            warnings.append(
                f"{bundle_path} (sha256 {actual[:12]}...) is not the bundle the model was trained with "
                f"(card says {str(expected)[:12]}...): live keypoints may differ from training; "
                "rebuild it with `make setup` or re-export the model"
            )
    return Site(card_path, card, onnx_path, bundle_path, vendor_dir.resolve(), static_dir.resolve(), warnings)


class BadPath(ValueError):
    pass


def _segments(url_path: str) -> list[str]:
    """Decoded path segments of ``url_path`` (which starts with ``/``), refusing anything that could escape."""
    if not url_path.startswith("/") or url_path.startswith("//"):
        raise BadPath("path must be absolute and same-origin")
    try:
        decoded = urllib.parse.unquote(url_path, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadPath("invalid percent-encoding") from exc
    if "\x00" in decoded or "\\" in decoded:
        raise BadPath("forbidden character")
    parts = decoded.split("/")[1:]
    for part in parts:
        if part in ("", ".", "..") or part.startswith("."):
            raise BadPath(f"forbidden path segment {part!r}")
    return parts


def _inside(root: Path, parts: list[str]) -> Path | None:
    """``root/parts`` if it is a regular file that really lives under ``root`` (symlinks resolved)."""
    try:
        target = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def resolve_path(site: Site, url_path: str) -> Path | None:
    """File for a request path (query string already removed), or None for 404. Raises BadPath."""
    exact = site.exact_routes()
    if url_path == "/":
        return exact["/"]
    parts = _segments(url_path)
    decoded = "/" + "/".join(parts)
    if decoded in exact:
        return exact[decoded]
    if not parts or Path(parts[-1]).suffix.lower() not in MIME_TYPES:
        return None
    if parts[0] == "vendor":
        return _inside(site.vendor_dir, parts[1:]) if len(parts) > 1 else None
    if parts[0] in ("model", "models"):
        return None  # only the exact card/onnx/bundle routes above
    return _inside(site.static_dir, parts)


class Handler(BaseHTTPRequestHandler):
    server_version = "musclevision-serve"
    sys_version = ""

    def version_string(self):
        return self.server_version

    protocol_version = "HTTP/1.1"
    site: Site  # set on the subclass made by make_server
    verbose = False

    def do_GET(self):
        self._serve(body=True)

    def do_HEAD(self):
        self._serve(body=False)

    def _not_allowed(self):
        self.close_connection = True  # any request body is left unread
        self._send_simple(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _send_simple(self, status: HTTPStatus, extra: dict | None = None, body: bool = True):
        payload = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(payload)

    def _serve(self, body: bool):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        try:
            target = resolve_path(self.site, path)
        except BadPath:
            self.close_connection = True
            return self._send_simple(HTTPStatus.BAD_REQUEST, body=body)
        if target is None:
            return self._send_simple(HTTPStatus.NOT_FOUND, body=body)
        try:
            f = open(target, "rb")
        except OSError:
            return self._send_simple(HTTPStatus.NOT_FOUND, body=body)
        with f:
            stat = os.fstat(f.fileno())
            etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            headers = {
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
                "Cache-Control": "no-cache",
                **SECURITY_HEADERS,
            }
            if etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", MIME_TYPES.get(target.suffix.lower(), "application/octet-stream"))
            self.send_header("Content-Length", str(stat.st_size))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                try:
                    shutil.copyfileobj(f, self.wfile, 1 << 20)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

    def log_request(self, code="-", size="-"):
        if self.verbose:
            super().log_request(code, size)

    def log_error(self, format, *args):
        if self.verbose:
            super().log_error(format, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        # Clients that go away or speak plain HTTP to the https port are not server errors.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
        return f"{scheme}://{shown}:{port}/"


def make_server(
    site: Site,
    host: str = "127.0.0.1",
    port: int = 8000,
    verbose: bool = False,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> Server:
    """A bound (not yet serving) server for ``site``; ``port=0`` picks a free port (see ``server.url``)."""
    handler = type("SiteHandler", (Handler,), {"site": site, "verbose": verbose})
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port") from exc
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            server.server_close()
            raise ServeError(f"cannot load TLS certificate {certfile} / key {keyfile}: {exc}") from exc
        # The handshake runs in the request's thread, so a slow client cannot stall accept().
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def _lan_address() -> str | None:
    """This machine's address on its local network (a UDP connect sends no packet)."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return None


def port_number(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="musclevision-serve",
        description="Serve the offline MuscleVision live demo page with one exported model.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default: %(default)s; 0 = any free port)")
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        help=f"model card JSON written by musclevision-export (default: {default_export()})",
    )
    parser.add_argument("--certfile", help="TLS certificate (PEM) to serve https, e.g. for a phone's camera on the LAN")
    parser.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.keyfile and not args.certfile:
        parser.error("--keyfile needs --certfile")

    try:
        site = load_site(args.export)
        server = make_server(site, args.host, args.port, args.verbose, args.certfile, args.keyfile)
    except ServeError as exc:
        print(f"musclevision-serve: error: {exc}", file=sys.stderr)
        return 2
    for warning in site.warnings:
        print(f"musclevision-serve: warning: {warning}", file=sys.stderr)

    card = site.card
    print(
        f"MuscleVision demo: model {card.get('name', site.card_path.stem)!r} ({site.card_path}), "
        f"{len(card['classes'])} classes, window {card['window_policy']['window']}, pose bundle {site.bundle_path.name}"
    )
    print(f"Open {server.url} in a browser (Ctrl+C to stop)", flush=True)
    if args.host in ("0.0.0.0", "::", ""):
        lan = _lan_address()
        if lan:
            print(f"From other devices on your network: {server.url.split('://')[0]}://{lan}:{server.server_address[1]}/")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.certfile:
        print(
            "note: browsers only allow the camera on https or localhost; from another device use "
            "--certfile/--keyfile, or the page's 'video file' input",
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
