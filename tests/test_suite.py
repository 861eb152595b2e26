"""The suite's own plumbing that make test relies on: modules kept whole on one pytest-xdist worker."""

from __future__ import annotations

from helpers import ONE_WORKER
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
