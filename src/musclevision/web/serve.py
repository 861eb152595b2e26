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

HTTP is Hypercorn's (HTTP/1.1, and HTTP/2 over TLS; idle and slow clients time out), the routes
and file responses Starlette's; what is ours is which file each URL names and the model card.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.staticfiles import NotModifiedResponse

from musclevision.card import CardError
from musclevision.card import load_card as load_model_card
from musclevision.paths import PACKAGE_DIR, assets_dir, default_export, sha256_file

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

# A connection that has not sent a whole request IDLE_TIMEOUT_S after connecting (or after its last
# response) is closed, so idle or slow clients cannot pile up; BACKLOG connections may wait for accept().
IDLE_TIMEOUT_S = 5.0
BACKLOG = 1024
SMALL_FILE = 1 << 20  # files up to this size are read whole and sent at once


class ServeError(RuntimeError):
    """A problem found before serving (missing card/onnx/bundle/vendor file); the message says what to run."""


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


# ------------------------------------------------------------------ what is served
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


def _inside(root: Path, parts: list[str]) -> Path | None:
    """``root/parts`` if it is a regular file that really lives under ``root`` (symlinks resolved)."""
    try:
        target = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def _check_named_file(path: Path, what: str, card_path: Path, fix: str) -> None:
    """The card names ``path``: it must exist, as a regular file inside its folder (not a link out of it)."""
    if not path.is_file():
        raise ServeError(f"{what} {path} (named by the model card {card_path}) is missing: {fix}")
    if _inside(path.parent, [path.name]) is None:
        raise ServeError(
            f"{what} {path} (named by the model card {card_path}) links to {path.resolve()}, outside "
            f"{path.parent}: the server only serves files inside that folder; copy the file there, or {fix}"
        )


def load_site(export: Path | str | None = None, assets: Path | str | None = None) -> Site:
    """Check everything the page will need and return the :class:`Site` to serve (raises ServeError)."""
    card_path = Path(export or default_export()).expanduser().resolve()
    assets = Path(assets).resolve() if assets else assets_dir()
    card = load_card(card_path)

    onnx_path = card_path.parent / card["onnx"]
    _check_named_file(onnx_path, "ONNX model", card_path, "re-run `musclevision-export`")
    bundle_path = (assets / "pose").resolve() / card["pose_model"]["bundle"]
    _check_named_file(bundle_path, "pose bundle", card_path, "run `make setup` (it builds assets/pose/*.task)")
    vendor_dir = assets / "web" / "vendor"
    missing = [str(vendor_dir / name) for name in _vendor_files() if not (vendor_dir / name).is_file()]
    if missing:
        raise ServeError(
            "page vendor file(s) missing: " + ", ".join(missing) + "; run `make setup` (copies the pinned "
            "@mediapipe/tasks-vision and onnxruntime-web files into assets/web/vendor)"
        )
    if not (STATIC_DIR / "index.html").is_file():
        raise ServeError(f"{STATIC_DIR / 'index.html'} is missing: the musclevision package is incomplete, reinstall it")

    warnings = [f"model {card['name']!r}: {card['training']['warning']}"] if card["training"].get("warning") else []
    expected = card["pose_model"].get("bundle_sha256")
    if expected:
        actual = sha256_file(bundle_path)
        if actual != expected:
            warnings.append(
                f"{bundle_path} (sha256 {actual[:12]}...) is not the bundle the model was trained with "
                f"(card says {str(expected)[:12]}...): live keypoints may differ from training; "
                "rebuild it with `make setup` or re-export the model"
            )
    return Site(card_path, card, onnx_path, bundle_path, vendor_dir.resolve(), STATIC_DIR.resolve(), warnings)


# ------------------------------------------------------------------ requests
def _segments(url_path: str) -> list[str] | None:
    """Decoded segments of a raw URL path, or None for anything that could leave the folder or hide (encoded or not)."""
    try:
        decoded = urllib.parse.unquote(url_path, errors="strict")
    except UnicodeDecodeError:
        return None
    parts = decoded.split("/")[1:]
    if not url_path.startswith("/") or "\x00" in decoded or "\\" in decoded:
        return None
    return None if any(part in ("", ".", "..") or part.startswith(".") for part in parts) else parts


class _FileResponse(FileResponse):
    chunk_size = 1 << 20  # each chunk read is a thread hop: 64 KiB ones cost large files half their throughput


def _send_file(request: Request, root: Path, parts: list[str], url_name: str | None = None) -> Response:
    """``root/parts``, typed by the URL's file name (only MIME_TYPES); 404 unless a regular file inside ``root``."""
    mime = MIME_TYPES.get(Path(url_name or parts[-1]).suffix.lower())
    target = _inside(root, parts) if mime else None
    if target is None:
        raise HTTPException(HTTPStatus.NOT_FOUND)
    stat = target.stat()
    response = _FileResponse(target, media_type=mime, stat_result=stat, headers={"Cache-Control": "no-cache"})
    if response.headers["etag"] in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return NotModifiedResponse(response.headers)
    if stat.st_size > SMALL_FILE:
        return response
    # Read here, in the event loop: half the CPU time and latency of FileResponse's thread hops (bench_serve.py).
    headers = {key: response.headers[key] for key in ("etag", "last-modified", "cache-control")}
    return Response(target.read_bytes(), media_type=mime, headers=headers)


def _url_parts(request: Request) -> list[str]:
    """The request's path segments, judged on the raw path (encoded dots, slashes, bad escapes): 400 if unsafe."""
    parts = _segments(request.scope["raw_path"].decode("latin-1"))
    if parts is None:
        raise HTTPException(HTTPStatus.BAD_REQUEST)
    return parts


async def _error(request: Request, exc: HTTPException) -> Response:
    status = HTTPStatus(exc.status_code)
    if request.method not in ("GET", "HEAD"):  # whatever the path (CONNECT's matches no route)
        status = HTTPStatus.METHOD_NOT_ALLOWED
    headers = {**(exc.headers or {}), "Cache-Control": "no-store"}
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = "GET, HEAD"  # Starlette lists its method set in any order
    return PlainTextResponse(f"{status.value} {status.phrase}\n", status, headers)


def make_app(site: Site) -> Starlette:
    """The ASGI app: one route per URL shape of the module docstring (GET, and HEAD with it)."""

    def named(path: Path, url_name: str | None = None):
        """The file the site names (the card, its ONNX model, its bundle), as long as it stays inside its folder."""

        async def endpoint(request: Request) -> Response:
            if request.path_params.get("name", path.name) != path.name:
                raise HTTPException(HTTPStatus.NOT_FOUND)
            return _send_file(request, path.parent, [path.name], url_name)

        return endpoint

    async def vendor(request: Request) -> Response:
        return _send_file(request, site.vendor_dir, _url_parts(request)[1:])

    async def page_file(request: Request) -> Response:
        parts = _url_parts(request)
        if parts[0] in ("model", "models"):  # only the card, its ONNX model and its bundle live there
            raise HTTPException(HTTPStatus.NOT_FOUND)
        return _send_file(request, site.static_dir, parts)

    routes = {
        "/": named(site.static_dir / "index.html"),
        "/model/card.json": named(site.card_path, "card.json"),
        "/model/{name}": named(site.onnx_path),
        "/models/pose/{name}": named(site.bundle_path),
        "/vendor/{rest:path}": vendor,
        "/{rest:path}": page_file,
    }
    return Starlette(
        routes=[Route(url, endpoint, methods=["GET"]) for url, endpoint in routes.items()],
        exception_handlers={HTTPException: _error},
    )


# ------------------------------------------------------------------ the server
class _HypercornConfig(HypercornConfig):
    """Hypercorn's settings; every response it sends, the app's and its own (400 on a malformed request,
    ...), carries SECURITY_HEADERS."""

    include_server_header = False

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        extra = [(b"server", b"musclevision-serve")] + [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        return super().response_headers(protocol) + extra


class Server:
    """Our app, its Hypercorn settings and the socket :func:`make_server` bound; run it with ``serve()``."""

    def __init__(self, app: Starlette, sock: socket.socket, config: HypercornConfig):
        self.app, self.socket, self.config = app, sock, config
        self.server_address = sock.getsockname()[:2]
        self._warned_at = -60.0

    @property
    def url(self) -> str:
        host, port = self.server_address
        scheme = "https" if self.config.ssl_enabled else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
        return f"{scheme}://{shown}:{port}/"

    async def serve(self, shutdown_trigger: Callable[[], Awaitable[object]] | None = None) -> None:
        """Serve until ``await shutdown_trigger()`` returns; without one, until Ctrl+C or SIGTERM (Hypercorn's
        own signal handlers, which only the main thread can install: a server in another thread passes one)."""
        asyncio.get_running_loop().set_exception_handler(self._out_of_files)
        self.config.bind = [f"fd://{self.socket.detach()}"]  # Hypercorn serves our socket, and closes it
        await hypercorn_serve(self.app, self.config, shutdown_trigger=shutdown_trigger)

    def _out_of_files(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """One line a minute instead of asyncio's traceback a second while accept() runs out of file descriptors."""
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)):
            return loop.default_exception_handler(context)
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            print(f"musclevision-serve: warning: {exc.strerror}; new connections wait until idle ones time out", file=sys.stderr)


def make_server(
    site: Site,
    host: str = "127.0.0.1",
    port: int = 8000,
    verbose: bool = False,
    certfile: str | None = None,
    keyfile: str | None = None,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> Server:
    """A bound (not yet serving) server for ``site``; ``port=0`` picks a free port (see ``server.url``)."""
    config = _HypercornConfig()
    # Also covers a new connection until its first request is complete (and the TLS handshake before it).
    config.keep_alive_timeout = config.ssl_handshake_timeout = idle_timeout
    config.backlog = BACKLOG
    config.graceful_timeout = 1.0
    config.accesslog = "-" if verbose else None
    config.loglevel = "INFO" if verbose else "WARNING"
    if certfile:
        config.certfile, config.keyfile = certfile, keyfile or certfile  # a PEM may hold both
        try:
            config.create_ssl_context()
        except (OSError, ssl.SSLError) as exc:
            key = f"key {keyfile}" if keyfile else "its private key (no --keyfile: looked for in the same file)"
            raise ServeError(f"cannot load the TLS certificate {certfile} with {key}: {exc}; give PEM files, e.g. from "
                             "`openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem`") from exc  # fmt: skip
    # Our own socket, not Hypercorn's bind: port=0 gives the port to print, a taken port one clear line.
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        what = "--host" if isinstance(exc, socket.gaierror) else "--port"
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another {what}") from exc
    return Server(make_app(site), sock, config)


def _lan_address() -> str | None:
    """This machine's address on its local network (a UDP connect sends no packet)."""
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
    asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
