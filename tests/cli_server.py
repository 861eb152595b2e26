"""Runs console scripts in forked children of one process that has imported them already (used by tests/helpers.py).

A fresh ``musclevision-train`` spends ~8 s (more on a loaded 2-core machine) importing PyTorch Lightning before it
reads its command line; the suite runs ~40 such commands. This server imports what they share once (the modules
given on its command line: PyTorch Lightning, Hydra and our training code), then each request forks a child that
runs exactly what the console script runs (``sys.exit(main())`` with the given argv, environment and working
folder, stdout/stderr to files, stdin from /dev/null) and exits the way Python exits.

Protocol (JSON lines on stdin/stdout): a request ``{"script", "args", "cwd", "env", "stdout", "stderr"}`` is
answered by ``{"pid": <child>}`` at once and ``{"returncode": <code>}`` when the child ends (negative: killed by a
signal, as subprocess reports it). ``{"ready": true}`` is written once the modules are imported.

Preload only modules that start no threads: a forked child has none of its parent's threads, and a library that
joins its thread pool at exit then hangs or aborts (onnxruntime does: export and calibrate import it themselves,
in the child, ~0.5 s).
"""

from __future__ import annotations

import json
import os
import sys
import types
from importlib import import_module
from importlib.metadata import entry_points


def entry(script: str):
    (point,) = [p for p in entry_points(group="console_scripts") if p.name == f"musclevision-{script}"]
    return point


def run_child(request: dict, script_path: str) -> None:
    """In the forked child: become the console script, then exit through the interpreter (atexit runs)."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    sys.argv = [script_path, *request["args"]]
    # Spawned worker processes (the extractor's pool) re-import the main module by its path, as they would
    # under the console script: point __main__ at the script, not at this server.
    stub = types.ModuleType("__main__")
    stub.__file__ = script_path
    sys.modules["__main__"] = stub
    point = entry(request["script"])
    main = getattr(import_module(point.module), point.attr)  # already imported, unless it is export's or calibrate's
    sys.exit(main())


def serve() -> None:
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # nothing but replies on the protocol pipe, whatever a library prints
    for module in sys.argv[1:]:
        import_module(module)
    bin_dir = os.path.dirname(sys.executable)
    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            reply.close()
            run_child(request, os.path.join(bin_dir, f"musclevision-{request['script']}"))
        reply.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        reply.write(json.dumps({"returncode": code}) + "\n")


if __name__ == "__main__":
    serve()
