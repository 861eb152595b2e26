"""Where the project's files live, resolved once so every stage agrees.

The project root is the checkout that holds ``pyproject.toml`` (editable installs, the way
researchers use this repo) or ``$MUSCLEVISION_ROOT`` when set (cluster jobs, odd layouts).
Generated assets (pose ``.task`` bundles, the page's vendored JS/wasm) go under
``<root>/assets``: they are rebuilt by ``make setup`` and never committed. ``sha256_file`` names a
file by its content (videos in the cache, pose bundles in cards and the server) for every stage.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    env = os.environ.get("MUSCLEVISION_ROOT")
    if env:
        return Path(env).resolve()
    checkout = PACKAGE_DIR.parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd().resolve()


def default_export() -> Path:
    """The default model's card (exports/best.json: shipped with the project, made by `make default-model`), which
    the server and replay use unless told otherwise."""
    return project_root() / "exports" / "best.json"


def assets_dir() -> Path:
    return Path(os.environ.get("MUSCLEVISION_ASSETS", project_root() / "assets")).resolve()


def config_dir() -> Path:
    """Hydra config root: the checkout's ``configs/``, or the copy packaged into a wheel."""
    for candidate in (project_root() / "configs", PACKAGE_DIR / "configs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no Hydra configs found in {project_root() / 'configs'} or {PACKAGE_DIR / 'configs'}; "
        "run from a MuscleVision checkout or set MUSCLEVISION_ROOT to one"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
