"""The suite's own plumbing that make test relies on: modules kept whole on one pytest-xdist worker, and console
scripts run as forks of a process that imported them already (tests/cli_server.py)."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import ONE_WORKER, SMALL_SYNTHETIC, run_cli
from musclevision.paths import project_root


def test_one_worker_modules_exist_and_hold_module_fixtures():
    """A renamed module would silently lose its place on one worker (two SLURM clusters on one state folder)."""
    for module in ONE_WORKER:
        path = project_root() / module
        assert path.is_file(), f"{module} is in ONE_WORKER (tests/helpers.py) but does not exist"
        assert '@pytest.fixture(scope="module")' in path.read_text(), f"{module} has no module fixture left to share"


class TwoWorkers:
    """What xdist's scheduler reads of the configuration of `pytest -n 2`."""

    def getvalue(self, name: str):
        return {"tx": ["2*popen"]}[name]


def test_the_scheduler_keeps_those_modules_whole_and_spreads_the_rest(pytestconfig):
    """The scheduler make test gets (the first answer to xdist's hook is ours, from tests/conftest.py)."""
    scheduling = pytestconfig.hook.pytest_xdist_make_scheduler(config=TwoWorkers(), log=None)
    assert type(scheduling).__module__ == "conftest", type(scheduling)
    for module in ONE_WORKER:
        assert {scheduling._split_scope(f"{module}::test_{n}[a]") for n in range(3)} == {module}
    singles = ["tests/test_train.py::test_a", "tests/test_train.py::test_b"]
    assert [scheduling._split_scope(nodeid) for nodeid in singles] == singles


@pytest.mark.integration  # starts the console script anew on purpose (~9 s of imports)
def test_a_forked_console_script_answers_like_a_fresh_process(tmp_path, monkeypatch):
    """Same exit code, same stderr, same files as the console script started anew; a timeout kills only the run."""
    args = (*SMALL_SYNTHETIC, "trainer.max_epochs=abc", "logger=csv")
    forked = run_cli("train", *args, f"hydra.run.dir={tmp_path / 'forked'}")
    monkeypatch.setenv("MUSCLEVISION_TEST_FORK", "0")
    fresh = run_cli("train", *args, f"hydra.run.dir={tmp_path / 'fresh'}")
    assert forked.returncode == fresh.returncode == 2, (forked, fresh)
    assert (
        forked.stderr.replace(str(tmp_path / "forked"), str(tmp_path / "fresh")) == fresh.stderr
        and forked.stdout == fresh.stdout == ""
    )
    assert (tmp_path / "forked" / "error.txt").is_file() and (tmp_path / "fresh" / "error.txt").is_file()
    monkeypatch.setenv("MUSCLEVISION_TEST_FORK", "1")
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("train", *SMALL_SYNTHETIC, "trainer.max_epochs=1000", f"hydra.run.dir={tmp_path / 'long'}", timeout=1)
    done = run_cli("train", *args, f"hydra.run.dir={tmp_path / 'after'}")  # the server still answers
    assert done.returncode == 2 and os.path.isfile(tmp_path / "after" / "error.txt"), done
