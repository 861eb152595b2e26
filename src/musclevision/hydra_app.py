"""Turn a ``task(cfg)`` function into a console script running under Hydra with our config tree."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from musclevision.paths import config_dir, project_root


def hydra_entry(config_name: str, task: Callable[[DictConfig], object]) -> Callable[[], None]:
    """A ``main()`` for ``[project.scripts]``: runs ``task`` with Hydra, exits with its int result.

    A non-int result (a metric, for sweepers such as Optuna) means success.
    """

    def main() -> None:
        # configs/paths resolves every location from this, so commands work from any cwd.
        os.environ.setdefault("MUSCLEVISION_ROOT", str(project_root()))
        outcome: dict[str, object] = {}

        @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
        def app(cfg: DictConfig):
            outcome["result"] = task(cfg)
            return outcome["result"]

        app()
        result = outcome.get("result")
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    return main
