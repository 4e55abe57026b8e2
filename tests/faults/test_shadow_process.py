"""The shadow challenger's process under real faults beside a served process: killed and stopped
while Score calls flow (every call still answers OK, a new child pairs again), and gone with its
server when the server is killed."""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.served import ScoreLoad, ServedProcess
from tests.faults.tally import FaultTally
from tests.helpers import wait_until
from tests.integration.test_shadow import challenger_copy
from training.registry import shadow

AGREEMENT = "effort_shadow_tier_agreement_total"
FAILURES = "effort_shadow_failures_total"


def _child_of(pid: int) -> int | None:
    """The process id of the server's challenger child, if one runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and b"service.challenger_child" in command:
            return int(entry.name)
    return None


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state


@pytest.mark.slow
def test_a_killed_or_stopped_challenger_costs_no_call_and_dies_with_its_server(
        start_served: Callable[..., ServedProcess], tally: FaultTally) -> None:
    calls = tally.scenario("shadow challenger process killed and stopped under load")
    served = start_served({"EFFORT_SHADOW_SHARE": "1.0"})
    challenger_copy(served.models_dir, served.version, "challenger-1")
    shadow(served.models_dir, "challenger-1")
    assert served.process is not None
    server = served.process.pid
    with ScoreLoad(served.address, calls) as load:
        wait_until(lambda: served.metric(AGREEMENT) > 0, 60, "paired answers")
        first = _child_of(server)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: served.metric(FAILURES) >= 1, 30, "the failed pass to be counted")
        paired = served.metric(AGREEMENT)
        wait_until(lambda: served.metric(AGREEMENT) > paired, 60, "a new child pairing again")
        second = _child_of(server)
        assert second not in (None, first)
        assert second is not None
        failed = served.metric(FAILURES)
        os.kill(second, signal.SIGSTOP)  # hung: stopped after its 10 s timeout
        wait_until(lambda: served.metric(FAILURES) > failed, 40, "the hung pass to be counted")
        wait_until(lambda: _gone(second), 10, "the hung child to be killed")
        paired = served.metric(AGREEMENT)
        wait_until(lambda: served.metric(AGREEMENT) > paired, 60, "a third child pairing")
        third = _child_of(server)
        assert third not in (None, first, second)
        assert third is not None
        load.wait_calls(20)
    assert load.failures == []
    # One line per failure (the kill, the hang), none for the passes of the pause after each.
    assert served.log_text().count("shadow challenger process failed") == 2

    served.kill()  # kill -9 of the server: the child sees its pipe close
    wait_until(lambda: _gone(third), 10, "the child to exit with its server")
