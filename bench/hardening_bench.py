"""Score latency beside 10,000-id ScoreBatch calls, and admitted calls' latency under overload.

On the SYNTHETIC demo, SQLite then Redis online store, one `effort serve` process each; the load
generators run in this process on the same 2 cores, except the overload's flood, which comes
from h2load (nghttp2's C load generator) when it is installed. Goals (issue 11): with batches running, Score
p99 within 2x of its p99 without them and no Score missing a 200 ms deadline; at 4x overload,
admitted calls' p99 within 2x of the unloaded p99.
"""

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType

import grpc
from flood import FloodResult, flood, h2load_available
from load import peak
from ports import free_port
from prometheus_client.parser import text_string_to_metric_families
from serving_bench import _start, redis_online_store

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc
from service.overload_guard import haproxy_binary
from service.settings import Settings

SCORE_RATE = 50.0
SCORE_CALLS = 2000  # p99 is then the 20th slowest call, not the 5th
DEADLINE_SECONDS = 0.2
BATCH_SIZE = 10_000
PROBE_RATE = 50.0
OVERLOAD = 4.0
PROBE_SECONDS = 16  # 800 probe calls: p99 is the 8th slowest
GUARD_LIMIT = Settings.model_fields["guard_max_in_flight"].default
GUARD_QUEUE = Settings.model_fields["guard_max_queued"].default


def _scores_at_fixed_rate(address: str) -> tuple[list[float], int]:
    """SCORE_CALLS Scores at SCORE_RATE per second with a 200 ms deadline: latencies (ms) of the
    answered ones and how many missed the deadline."""
    latencies, refused = _probe(address, SCORE_CALLS / SCORE_RATE, SCORE_RATE, DEADLINE_SECONDS)
    return latencies, sum(refused.values())


def _p(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100)[q - 1]


def _send_batches(address: str, stop: EventType, seconds: "Queue[float]") -> None:
    """10,000-id ScoreBatch calls back to back until `stop`; each one's seconds on `seconds`."""
    request = pb.ScoreBatchRequest(requests=[
        pb.ScoreRequest(customer_id=f"C{n:06d}", channel="CHANNEL_VOICE")
        for n in range(1, BATCH_SIZE + 1)])
    options = [("grpc.max_receive_message_length", 256 << 20)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.ScoringServiceStub(channel)
        while not stop.is_set():
            began = time.perf_counter()
            stub.ScoreBatch(request, timeout=120)
            seconds.put(time.perf_counter() - began)


def batches_beside_scores(address: str) -> None:
    """Score at a fixed rate alone, then while one client sends 10,000-id batches back to back.
    The batch client is a process of its own: in the probe's process, decoding a 10,000-answer
    response took the interpreter lock from the probe and showed up as the server's latency."""
    alone, missed_alone = _scores_at_fixed_rate(address)
    context = multiprocessing.get_context("spawn")
    stop, finished = context.Event(), context.Queue()
    batcher = context.Process(target=_send_batches, args=(address, stop, finished))
    batcher.start()
    time.sleep(3.0)  # the spawned client starts and sends its first batch
    beside, missed_beside = _scores_at_fixed_rate(address)
    stop.set()
    batcher.join()
    batch_seconds = []
    while not finished.empty():
        batch_seconds.append(finished.get())
    print(f"  Score at {SCORE_RATE:.0f}/s, {DEADLINE_SECONDS * 1000:.0f} ms deadline, "
          f"{SCORE_CALLS} calls each:")
    print(f"    alone         p50 {_p(alone, 50):6.2f} ms  p99 {_p(alone, 99):6.2f} ms  "
          f"missed {missed_alone}")
    print(f"    with batches  p50 {_p(beside, 50):6.2f} ms  p99 {_p(beside, 99):6.2f} ms  "
          f"missed {missed_beside}  ({len(batch_seconds)} batches of {BATCH_SIZE:,}, "
          f"{statistics.mean(batch_seconds):.1f} s each)")
    print(f"    p99 with / without = {_p(beside, 99) / _p(alone, 99):.2f} (goal <= 2), "
          f"missed deadlines {missed_beside} (goal 0)")


def _probe(address: str, seconds: float, rate: float = PROBE_RATE,
           timeout: float = 2.0) -> tuple[list[float], Counter[str]]:
    """Score calls at `rate` per second for `seconds`: latencies (ms) of the answered ones, and
    the other outcomes by status code."""
    latencies: list[float] = []
    refused: Counter[str] = Counter()
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ScoringServiceStub(channel)
        started = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            began = time.perf_counter()
            try:
                stub.Score(pb.ScoreRequest(customer_id=f"C{n % 10_000 + 1:06d}"), timeout=timeout)
                latencies.append((time.perf_counter() - began) * 1000)
            except grpc.RpcError as error:
                refused[error.code().name] += 1
    return latencies, refused


def _score_answers(metrics_port: int) -> float:
    """Score calls the server answered OK so far, from its metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "grpc_server_handled_total"
               and sample.labels.get("grpc_method") == "Score"
               and sample.labels.get("grpc_code") == "OK")


def measure_capacity(address: str) -> float:
    """Score calls per second with 8 always in flight, on a server without the guard: the best
    of three runs, since a run on a shared 2-core machine can come out far below the others."""
    _probe(address, 2)  # warm-up
    return max(asyncio.run(peak(address, 4, concurrency=8)).rate for _ in range(3))


def overload(address: str, metrics_port: int, capacity: float) -> None:
    """Unloaded p99 through `address`; then h2load offers 4x `capacity`, open loop, while a
    probe at 50 calls/s measures what an admitted call waits, and the server's metrics page
    what it answered. h2load, in C, offers the full 4x where a Python generator on the same
    cores could not (BENCHMARKS.md)."""
    _probe(address, 2)  # warm-up
    unloaded, _ = _probe(address, PROBE_SECONDS)
    print(f"  unloaded (probe at {PROBE_RATE:.0f}/s): p50 {_p(unloaded, 50):.2f} ms, p99 "
          f"{_p(unloaded, 99):.2f} ms; capacity {capacity:,.0f} calls/s (8 in flight, "
          "no guard)")
    if not h2load_available():
        print("  4x overload: skipped, h2load is not installed (Debian's nghttp2-client; "
              "`make bench` installs it)")
        return
    offered = OVERLOAD * capacity
    flooded: list[FloodResult] = []
    flooder = threading.Thread(target=lambda: flooded.append(
        flood(address, offered, PROBE_SECONDS + 4)))
    answered_before = _score_answers(metrics_port)
    flooder.start()
    time.sleep(2)
    admitted, refused = _probe(address, PROBE_SECONDS)
    flooder.join()
    answered = _score_answers(metrics_port) - answered_before - len(admitted)
    codes = ", ".join(f"{code} {count}" for code, count in refused.most_common()) or "none"
    print(f"  {OVERLOAD:.0f}x overload: h2load offered {offered:,.0f}/s and got "
          f"{flooded[0].rate:,.0f} answers/s (any status), {answered / flooded[0].seconds:,.0f}/s "
          f"of them scored (OK); probe admitted {len(admitted)} at p50 "
          f"{_p(admitted, 50) if len(admitted) > 1 else float('nan'):.2f} ms, p99 "
          f"{_p(admitted, 99) if len(admitted) > 1 else float('nan'):.2f} ms; refused: {codes}")
    if len(admitted) > 1:
        print(f"    admitted p99 / unloaded p99 = {_p(admitted, 99) / _p(unloaded, 99):.1f} "
              "(goal <= 2)")


@contextmanager
def _server(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """One `effort serve` with `env`: its gRPC address and metrics port."""
    port, metrics_port = free_port(), free_port()
    process: subprocess.Popen[bytes] = _start(
        "effort", port, {**env, "EFFORT_METRICS_PORT": str(metrics_port)})
    try:
        yield f"127.0.0.1:{port}", metrics_port
    finally:
        process.terminate()
        process.wait(timeout=60)


def run(store: str, env: dict[str, str], guard_only: bool = False) -> None:
    print(f"{store} online store (SYNTHETIC demo):", flush=True)
    with _server(env) as (address, metrics_port):
        if not guard_only:
            batches_beside_scores(address)
        capacity = measure_capacity(address)
        if not guard_only:
            print(" without the overload guard:")
            overload(address, metrics_port, capacity)
    if haproxy_binary() is None:
        print(" with the overload guard: skipped, haproxy is not installed (`make haproxy`)")
        return
    guarded = {**env, "EFFORT_OVERLOAD_GUARD": "true"}
    limit = os.environ.get("EFFORT_GUARD_MAX_IN_FLIGHT", GUARD_LIMIT)
    queued = os.environ.get("EFFORT_GUARD_MAX_QUEUED", GUARD_QUEUE)
    with _server(guarded) as (address, metrics_port):
        print(f" with the overload guard (HAProxy, {limit} Score calls at a time per server, "
              f"{queued} waiting):")
        overload(address, metrics_port, capacity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "redis", "both"), default="both")
    parser.add_argument("--guard-only", action="store_true", help="only the overload through the "
                        "guard (its limits from EFFORT_GUARD_MAX_IN_FLIGHT and _QUEUED when set)")
    args = parser.parse_args()
    if args.store in ("sqlite", "both"):
        run("SQLite", {"EFFORT_ONLINE_STORE": "sqlite", "EFFORT_DRAIN_SECONDS": "0"},
            args.guard_only)
    if args.store in ("redis", "both"):
        with redis_online_store() as redis_url:
            run("Redis", {"EFFORT_ONLINE_STORE": "redis", "EFFORT_REDIS_URL": redis_url,
                          "EFFORT_DRAIN_SECONDS": "0"}, args.guard_only)


if __name__ == "__main__":
    main()
