"""Benchmark musclevision-serve on loopback: latency and throughput for a page file and the .onnx.

For each server command (started with ``--port 0 --export CARD``, its URL read from its output)
and each path:

* latency: ``--requests`` sequential GETs on one keep-alive connection, and on a fresh connection
  each (what a browser pays for its first requests); p50 and p95 in ms;
* throughput: ``--clients`` concurrent keep-alive clients for ``--seconds``; requests/s and MB/s;
* the server's CPU time per request (from /proc, all its threads) on keep-alive and on fresh
  connections: unlike the wall-clock numbers, hardly moved by other load on the machine.

The client is one asyncio process with a minimal HTTP/1.1 reader, so it costs every server alike.
Loopback only; everything is bounded by the options. Compare two servers side by side (ratios are
the last server over the first), e.g. the http.server version before the move to Hypercorn:

    git show 8e3160f:src/musclevision/web/serve.py > /tmp/serve_http_server.py
    python benchmarks/bench_serve.py --server before="python /tmp/serve_http_server.py" --server after
    python benchmarks/bench_serve.py --export exports/best.json --seconds 5 --clients 8 --json out.json

Timings on a shared machine are indicative; rerun on a quiet one before quoting them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from musclevision.paths import project_root

DEFAULT_SERVER = f"{sys.executable} -m musclevision.web.serve"
KEYS = ["keepalive_p50_ms", "fresh_p50_ms", "keepalive_cpu_ms", "fresh_cpu_ms", "req_per_s", "mb_per_s"]
TITLES = ["keep-alive p50 ms", "new conn p50 ms", "keep-alive CPU ms", "new conn CPU ms", "req/s", "MB/s"]
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


@contextmanager
def running(command: str, card: Path, timeout: float = 60.0):
    """Start ``command --port 0 --export card``; yields (pid, (host, port)) from the URL it prints."""
    proc = subprocess.Popen(
        [*shlex.split(command), "--port", "0", "--export", str(card)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline, address = time.monotonic() + timeout, None
        while address is None:
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise SystemExit(f"bench_serve: {command!r} printed no URL (exit code {proc.poll()})")
            match = re.search(r"(https?://[^\s/]+/)", line)
            if match:
                parsed = urlparse(match.group(1))
                address = (parsed.hostname, parsed.port)
        yield proc.pid, address
    finally:
        proc.terminate()
        proc.wait(15)


class Client:
    """One keep-alive HTTP/1.1 connection: ``await get(path)`` -> body size."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, address) -> Client:
        return cls(*await asyncio.open_connection(*address))

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
        if status != b"200":
            raise SystemExit(f"bench_serve: GET {path} answered {head.splitlines()[0].decode()}")
        await self.reader.readexactly(length)
        return length

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


async def measure(pid: int, address, path: str, requests: int, clients: int, seconds: float) -> dict:
    client = await Client.open(address)
    size = await client.get(path)  # warm-up (and the size)
    keep_alive, cpu0 = [], cpu_seconds(pid)
    for _ in range(requests):
        t0 = time.perf_counter()
        await client.get(path)
        keep_alive.append(time.perf_counter() - t0)
    await client.close()

    fresh, cpu1 = [], cpu_seconds(pid)
    for _ in range(requests):
        t0 = time.perf_counter()
        client = await Client.open(address)
        await client.get(path)
        fresh.append(time.perf_counter() - t0)
        await client.close()
    cpu2 = cpu_seconds(pid)

    done = [0] * clients
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        c = await Client.open(address)
        while time.perf_counter() < stop_at:
            await c.get(path)
            done[i] += 1
        await c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    return {
        "path": path,
        "bytes": size,
        "keepalive_p50_ms": statistics.median(keep_alive) * 1000,
        "fresh_p50_ms": statistics.median(fresh) * 1000,
        "keepalive_cpu_ms": (cpu1 - cpu0) / requests * 1000,
        "fresh_cpu_ms": (cpu2 - cpu1) / requests * 1000,
        "req_per_s": sum(done) / elapsed,
        "mb_per_s": sum(done) * size / elapsed / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, default=project_root() / "exports" / "best.json", help="model card to serve")
    parser.add_argument(
        "--server",
        action="append",
        metavar="[LABEL=]COMMAND",
        help=f"server command, repeatable (default: {DEFAULT_SERVER}; a bare label means the default command)",
    )
    parser.add_argument("--path", action="append", help="paths to fetch (default: /js/app.js and the card's .onnx)")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per latency test")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the throughput test")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput test")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all servers; medians are printed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not args.export.is_file():
        raise SystemExit(f"bench_serve: no model card at {args.export}: pass --export CARD.json")
    card = json.loads(args.export.read_text())
    paths = args.path or ["/js/app.js", "/model/" + card["onnx"]]

    servers = []
    for spec in args.server or ["current"]:
        label, _, command = spec.partition("=")
        servers.append((label, command or DEFAULT_SERVER))

    rounds = {label: [] for label, _ in servers}  # label -> one list of rows per round
    for _ in range(args.rounds):  # servers alternate, so background load hits them alike
        for label, command in servers:
            with running(command, args.export) as (pid, address):
                rows = [asyncio.run(measure(pid, address, p, args.requests, args.clients, args.seconds)) for p in paths]
                rounds[label].append(rows)
    results = {  # the median over rounds of every number
        label: [{**runs[0][i], **{k: statistics.median(r[i][k] for r in runs) for k in KEYS}} for i in range(len(paths))]
        for label, runs in rounds.items()
    }

    columns = list(zip(KEYS, TITLES))
    print(
        f"\nloopback, {args.requests} sequential requests, {args.clients} clients x {args.seconds:g} s (req/s, MB/s), "
        f"median of {args.rounds} rounds (indicative)"
    )
    width = max(len(p) for p in paths)
    print(f"{'server':10} {'path':{width}} {'KB':>7} " + " ".join(f"{title:>17}" for _, title in columns))
    for label, rows in results.items():
        for row in rows:
            values = " ".join(f"{row[key]:17.2f}" for key, _ in columns)
            print(f"{label:10} {row['path']:{width}} {row['bytes'] / 1024:7.0f} {values}")
    if len(results) > 1:
        first, last = list(results)[0], list(results)[-1]
        for a, b in zip(results[first], results[last]):
            ratios = " ".join(f"{b[key] / a[key]:17.2f}" for key, _ in columns)
            print(f"{last + '/' + first:10} {a['path']:{width}} {'':7} {ratios}")
    if args.json:
        args.json.write_text(json.dumps({"servers": dict(servers), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
