"""Fault suite fixtures: the session tally with its summary table and JSON report, served processes."""

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from tests.faults.served import ServedProcess
from tests.faults.tally import FaultTally, ScenarioRecorder
from tests.helpers import DemoWorld

REPORT_ENV = "EFFORT_FAULT_REPORT"  # where the tally goes as JSON, when set
TALLY_KEY = pytest.StashKey[FaultTally]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY_KEY] = FaultTally()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """One table of every fault scenario's calls, codes, degraded answers and event accounting;
    also written as JSON to $EFFORT_FAULT_REPORT when that is set."""
    tally = config.stash.get(TALLY_KEY, None)
    if tally is None or not tally.scenarios:
        return
    terminalreporter.write_sep("=", "fault-injection tally")
    for line in tally.table():
        terminalreporter.write_line(line)
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).write_text(json.dumps(tally.as_json(), indent=2) + "\n")
        terminalreporter.write_line(f"fault report written to {path}")


@pytest.fixture(scope="session")
def tally(pytestconfig: pytest.Config) -> FaultTally:
    """The session tally: `tally.scenario(name)` gives a recorder for a fault scenario's calls
    (`.call(stub.Method, request, timeout=...)`, `.record(outcome)`) and events (`.events(...)`)."""
    return pytestconfig.stash[TALLY_KEY]


@pytest.fixture(scope="session")
def fault_server(demo_world: DemoWorld,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    """`effort serve` (SQLite store) over copies of the demo world, shared by the suite; tests
    that change its CURRENT put it back."""
    served = ServedProcess(demo_world, tmp_path_factory.mktemp("fault-server"))
    served.start()
    yield served
    assert served.stop() == 0, served.log_text()[-3000:]


@pytest.fixture
def start_served(demo_world: DemoWorld,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServedProcess]]:
    """A factory of dedicated `effort serve` processes (`start_served(extra_env={...})`) over
    fresh copies of the demo world, each stopped at the end of the test."""
    started: list[ServedProcess] = []

    def start(extra_env: dict[str, str] | None = None) -> ServedProcess:
        served = ServedProcess(demo_world, tmp_path_factory.mktemp("served"), extra_env)
        started.append(served)
        served.start()
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="module")
def channel(fault_server: ServedProcess) -> Iterator[grpc.Channel]:
    """A channel to the shared fault server, for one test module."""
    with grpc.insecure_channel(fault_server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def calls(tally: FaultTally, request: pytest.FixtureRequest) -> ScenarioRecorder:
    """The recorder of the scenario the test module names in its SCENARIO."""
    return tally.scenario(request.module.SCENARIO)
