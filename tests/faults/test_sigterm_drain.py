"""SIGTERM to `effort serve` under load: NOT_SERVING streamed to Health.Watch, calls served through
the drain, then the port closes with no accepted call cancelled."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from service.overload_guard import haproxy_binary
from tests.faults.tally import FaultTally, ScenarioRecorder, code_name
from tests.helpers import DemoWorld, free_port, wait_serving

DRAIN_SECONDS = 1.5
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _serve(world: DemoWorld, tmp_path: Path,
           guard: bool = False) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`effort serve`, reached directly or through the overload guard (HAProxy)."""
    port = free_port()
    env = {**os.environ, "EFFORT_GRPC_HOST": "127.0.0.1", "EFFORT_GRPC_PORT": str(port),
           "EFFORT_METRICS_PORT": str(free_port()), "EFFORT_FEATURE_REPO": str(world.repo),
           "EFFORT_MODELS_DIR": str(world.models_dir), "EFFORT_DRAIN_SECONDS": str(DRAIN_SECONDS),
           "EFFORT_OVERLOAD_GUARD": str(guard).lower()}
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    wait_serving(port, process, log=log)
    return process, port, log


class Load:
    """Client threads calling until told to stop; every answer's status code is counted, and
    when each thread first saw the port refuse."""

    def __init__(self, port: int, calls: ScenarioRecorder) -> None:
        self._calls = calls
        self.codes: Counter[str] = Counter()
        self.failures: list[tuple[float, str, str]] = []  # when, code, details (not UNAVAILABLE)
        self.first_refusal: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = sgrpc.ScoringServiceStub(self._channel)
        batch = spb.ScoreBatchRequest(requests=[spb.ScoreRequest(customer_id=f"C{n:06d}")
                                                for n in range(1, 301)])
        requests: list[Callable[[], object]] = [
            lambda: calls.call(stub.Score, spb.ScoreRequest(customer_id="C000001"), timeout=10),
            lambda: calls.call(stub.Score, spb.ScoreRequest(customer_id="C000002",
                                                            channel="CHANNEL_CHAT"), timeout=10),
            lambda: calls.call(stub.ScoreBatch, batch, timeout=30),
        ]
        self._threads = [threading.Thread(target=self._run, args=(call,)) for call in requests]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._channel.close()

    def _run(self, call: Callable[[], object]) -> None:
        while not self._stop.is_set():
            outcome = call()
            code = code_name(outcome)  # type: ignore[arg-type]
            if isinstance(outcome, grpc.RpcError) and code != "UNAVAILABLE":
                self.failures.append((time.monotonic(), code, str(outcome)))
            with self._lock:
                self.codes[code] += 1
                if code == "UNAVAILABLE" and self.first_refusal is None:
                    self.first_refusal = time.monotonic()
            if code == "UNAVAILABLE":
                time.sleep(0.05)


# Several rounds: a call cancelled at the stop is a race, seen once in three runs before the
# closing moment of RunningServer.stop.
# Through the overload guard too: HAProxy keeps its port open until the server has stopped, and
# answers calls that come after the server's port closed UNAVAILABLE.
@pytest.mark.parametrize("round_", [1, 2, 3])
@pytest.mark.parametrize("front", ["direct", "guard"])
def test_sigterm_drains_under_load_and_cancels_no_accepted_call(
        demo_world: DemoWorld, tmp_path: Path, tally: FaultTally, round_: int, front: str) -> None:
    if front == "guard" and haproxy_binary() is None:
        pytest.skip("haproxy is not installed (`make haproxy`)")
    process, port, log = _serve(demo_world, tmp_path, guard=front == "guard")
    watched: list[tuple[float, int]] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(),
                                                          timeout=60)

        def follow() -> None:
            try:
                for answer in watch:
                    watched.append((time.monotonic(), answer.status))
            except grpc.RpcError:
                pass  # the stream ends when the server stops

        follower = threading.Thread(target=follow)
        follower.start()
        scenario = "SIGTERM under load with batches" + (" (guard)" if front == "guard" else "")
        with Load(port, tally.scenario(scenario)) as load:
            time.sleep(1.0)
            served_before = load.codes["OK"]
            terminated_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log.read_text()
            exited_at = time.monotonic()
            time.sleep(0.3)
        follower.join(timeout=10)

    codes = load.codes
    assert served_before > 0
    assert [status for _, status in watched][:2] == [SERVING, NOT_SERVING], watched
    not_serving_at = watched[1][0]
    # NOT_SERVING came at once, and calls were still answered for the drain period after it.
    assert not_serving_at - terminated_at < 0.5
    assert load.first_refusal is not None
    assert load.first_refusal - not_serving_at >= 0.8 * DRAIN_SECONDS, (
        load.first_refusal - not_serving_at, codes)
    assert exited_at - terminated_at < DRAIN_SECONDS + 10
    # Every call the server accepted was answered; the only failures are refusals after the
    # port closed.
    assert set(codes) <= {"OK", "UNAVAILABLE"}, (
        codes, [(when - terminated_at, code, details) for when, code, details in load.failures])
    assert codes["OK"] > served_before
