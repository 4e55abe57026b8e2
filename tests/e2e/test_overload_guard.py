"""The overload guard as it runs: `effort serve` with EFFORT_OVERLOAD_GUARD starts a real HAProxy
in front of its server, which sheds Score calls beyond its limit with RESOURCE_EXHAUSTED,
ErrorInfo and RetryInfo, passes health checks, counts its sheds, and stops with the server."""

import asyncio
import os
import re
import signal
import urllib.request
from collections import Counter
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from service.overload_guard import haproxy_binary
from tests.faults.served import ServedProcess, demo_customer, served_process
from tests.helpers import DemoWorld, process_alive, wait_until

pytestmark = pytest.mark.skipif(haproxy_binary() is None,
                                reason="haproxy is not installed (`make haproxy`)")
GUARDED = {"EFFORT_OVERLOAD_GUARD": "true", "EFFORT_GUARD_MAX_IN_FLIGHT": "1",
           "EFFORT_GUARD_MAX_QUEUED": "2"}
BURST = 60


def _haproxy_pid(served: ServedProcess) -> int:
    # The server logs the line just after HAProxy listens, so a fast health check can come first.
    pattern = re.compile(r"overload guard \(HAProxy pid (\d+)\)")
    wait_until(lambda: pattern.search(served.log_text()) is not None, 10, "the guard's start line")
    found = pattern.search(served.log_text())
    assert found, served.log_text()
    return int(found.group(1))


async def _burst(address: str) -> tuple[Counter[str], list[grpc.aio.AioRpcError], list[int]]:
    """BURST Scores at once over four connections and a health check per connection meanwhile:
    Score codes, the refused calls, and the health statuses."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
    try:
        async def score(n: int) -> str | grpc.aio.AioRpcError:
            stub = sgrpc.ScoringServiceStub(channels[n % 4])
            try:
                await stub.Score(demo_customer(n), timeout=30)
                return "OK"
            except grpc.aio.AioRpcError as error:
                return error

        async def health(channel: grpc.aio.Channel) -> int:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=30)
            return int(answer.status)

        outcomes = await asyncio.gather(*(score(n) for n in range(BURST)),
                                        *(health(channel) for channel in channels))
    finally:
        for channel in channels:
            await channel.close(None)
    scores, healths = outcomes[:BURST], outcomes[BURST:]
    refused = [outcome for outcome in scores if isinstance(outcome, grpc.aio.AioRpcError)]
    codes = Counter("OK" if outcome == "OK" else outcome.code().name  # type: ignore[union-attr]
                    for outcome in scores)
    return codes, refused, healths  # type: ignore[return-value]


def test_score_beyond_the_limit_is_shed_with_error_info_and_health_passes(
        demo_world: DemoWorld, tmp_path: Path) -> None:
    with served_process(demo_world, tmp_path, GUARDED) as served:
        codes, refused, healths = asyncio.run(_burst(served.address))
        assert set(codes) == {"OK", "RESOURCE_EXHAUSTED"}, codes
        assert healths == [health_pb2.HealthCheckResponse.SERVING] * 4
        status = rpc_status.from_call(refused[0])  # type: ignore[arg-type]
        assert status is not None and "at the overload guard" in status.message
        info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(info) and status.details[1].Unpack(retry)
        assert (info.reason, info.metadata["limit"]) == ("OVERLOADED", "queue")
        assert retry.retry_delay.ToMilliseconds() == 50
        # The guard counts exactly its sheds; the server answered exactly the admitted calls.
        assert served.metric("effort_guard_shed_total") == codes["RESOURCE_EXHAUSTED"]
        served.wait_metric("grpc_server_handled_total", codes["OK"], grpc_method="Score",
                           grpc_code="OK")
        assert served.metric("effort_shed_total") == 0  # none reached the server's own limit
        page = urllib.request.urlopen(f"http://127.0.0.1:{served.metrics_port}/metrics",
                                      timeout=10).read().decode()
        assert {"effort_guard_score_in_flight", "effort_guard_score_queued"} <= {
            sample.name for family in text_string_to_metric_families(page)
            for sample in family.samples}
        # Batches are not limited by the guard: one passes while Scores are refused.
        with grpc.insecure_channel(served.address) as channel:
            batch = sgrpc.ScoringServiceStub(channel).ScoreBatch(spb.ScoreBatchRequest(
                requests=[demo_customer(n) for n in range(20)]), timeout=30)
        assert len(batch.responses) == 20


def test_sigterm_stops_the_guard_with_the_server(demo_world: DemoWorld, tmp_path: Path) -> None:
    served = ServedProcess(demo_world, tmp_path, GUARDED)
    served.start()
    try:
        haproxy = _haproxy_pid(served)
        assert process_alive(haproxy)
        assert served.stop() == 0
        wait_until(lambda: not process_alive(haproxy), 10, "HAProxy to exit")
    finally:
        served.stop()  # a failed check must not leave the server running


def test_a_guard_that_dies_stops_the_server_loudly(demo_world: DemoWorld, tmp_path: Path) -> None:
    served = ServedProcess(demo_world, tmp_path, GUARDED)
    served.start()
    try:
        os.kill(_haproxy_pid(served), signal.SIGKILL)
        assert served.process is not None
        assert served.process.wait(timeout=60) == 0  # an orderly stop, for the supervisor to restart
        assert "the overload guard (HAProxy) exited" in served.log_text()
    finally:
        served.stop()


def test_worker_processes_each_get_a_port_behind_the_guard(demo_world: DemoWorld,
                                                           tmp_path: Path) -> None:
    with served_process(demo_world, tmp_path, {**GUARDED, "EFFORT_WORKERS": "2"}) as served:
        def ports() -> set[str]:
            return set(re.findall(r"serving model \S+ on 127\.0\.0\.1:(\d+)", served.log_text()))

        # A worker may write its line just after its port accepts, which is what the guard waits for.
        wait_until(lambda: len(ports()) == 2, 15, "both workers' lines")
        assert str(served.port) not in ports(), served.log_text()
        codes, _, healths = asyncio.run(_burst(served.address))
        assert set(codes) == {"OK", "RESOURCE_EXHAUSTED"}, codes
        assert healths == [health_pb2.HealthCheckResponse.SERVING] * 4
        assert served.metric("effort_guard_shed_total") == codes["RESOURCE_EXHAUSTED"]
        haproxy = _haproxy_pid(served)
    wait_until(lambda: not process_alive(haproxy), 10, "HAProxy to exit")
