"""Score latency beside 10,000-id ScoreBatch calls, and admitted calls' latency under overload.

On the SYNTHETIC demo, SQLite then Redis online store, one `effort serve` process each; the load
generators run in this process on the same 2 cores. Goals (issue 11): with batches running, Score
p99 within 2x of its p99 without them and no Score missing a 200 ms deadline; at 4x overload,
admitted calls' p99 within 2x of the unloaded p99.
"""

import asyncio
import statistics
import subprocess
import threading
import time

import grpc
from load import fixed_rate, peak
from ports import free_port
from serving_bench import _start, redis_online_store

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc

SCORE_RATE = 50.0
SCORE_CALLS = 500
DEADLINE_SECONDS = 0.2
BATCH_SIZE = 10_000


def _scores_at_fixed_rate(address: str) -> tuple[list[float], int]:
    """SCORE_CALLS Scores at SCORE_RATE per second with a 200 ms deadline: latencies (ms) of the
    answered ones and how many missed the deadline."""
    latencies, missed = [], 0
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ScoringServiceStub(channel)
        started = time.perf_counter()
        for n in range(SCORE_CALLS):
            delay = started + n / SCORE_RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            began = time.perf_counter()
            try:
                stub.Score(pb.ScoreRequest(customer_id=f"C{n % 10_000 + 1:06d}"),
                           timeout=DEADLINE_SECONDS)
                latencies.append((time.perf_counter() - began) * 1000)
            except grpc.RpcError:
                missed += 1
    return latencies, missed


def _p(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100)[q - 1]


def batches_beside_scores(address: str) -> None:
    """Score at a fixed rate alone, then while one client sends 10,000-id batches back to back."""
    alone, missed_alone = _scores_at_fixed_rate(address)
    stop = threading.Event()
    batch_seconds: list[float] = []

    def send_batches() -> None:
        request = pb.ScoreBatchRequest(requests=[
            pb.ScoreRequest(customer_id=f"C{n:06d}", channel="CHANNEL_VOICE")
            for n in range(1, BATCH_SIZE + 1)])
        options = [("grpc.max_receive_message_length", 256 << 20)]
        with grpc.insecure_channel(address, options=options) as channel:
            stub = pb_grpc.ScoringServiceStub(channel)
            while not stop.is_set():
                began = time.perf_counter()
                stub.ScoreBatch(request, timeout=120)
                batch_seconds.append(time.perf_counter() - began)

    batcher = threading.Thread(target=send_batches)
    batcher.start()
    time.sleep(1.0)
    beside, missed_beside = _scores_at_fixed_rate(address)
    stop.set()
    batcher.join()
    print(f"  Score at {SCORE_RATE:.0f}/s, {DEADLINE_SECONDS * 1000:.0f} ms deadline, "
          f"{SCORE_CALLS} calls each:")
    print(f"    alone         p50 {_p(alone, 50):6.2f} ms  p99 {_p(alone, 99):6.2f} ms  "
          f"missed {missed_alone}")
    print(f"    with batches  p50 {_p(beside, 50):6.2f} ms  p99 {_p(beside, 99):6.2f} ms  "
          f"missed {missed_beside}  ({len(batch_seconds)} batches of {BATCH_SIZE:,}, "
          f"{statistics.mean(batch_seconds):.1f} s each)")
    print(f"    p99 with / without = {_p(beside, 99) / _p(alone, 99):.2f} (goal <= 2), "
          f"missed deadlines {missed_beside} (goal 0)")


def overload(address: str) -> None:
    """Unloaded p99, capacity, then an open-loop load at 4x that capacity (as far as this
    process can offer it): the p99 of the admitted calls and how many were shed."""
    unloaded = asyncio.run(fixed_rate(address, 50, 6))
    capacity = asyncio.run(peak(address, 6, concurrency=8))
    offered = 4 * capacity.rate
    over = asyncio.run(fixed_rate(address, offered, 6))
    achieved = (over.calls + over.errors) / over.seconds
    print(f"  unloaded (50/s): p50 {unloaded.quantile(50):.2f} ms, p99 "
          f"{unloaded.quantile(99):.2f} ms; capacity {capacity.rate:,.0f} calls/s (8 in flight)")
    print(f"  4x overload: offered {offered:,.0f}/s (achieved {achieved:,.0f}/s): admitted "
          f"{over.calls:,} p50 {over.quantile(50):.2f} ms p99 {over.quantile(99):.2f} ms, "
          f"refused {over.errors:,}")
    print(f"    admitted p99 / unloaded p99 = {over.quantile(99) / unloaded.quantile(99):.1f} "
          "(goal <= 2)")


def run(store: str, env: dict[str, str]) -> None:
    port = free_port()
    process: subprocess.Popen[bytes] = _start("effort", port, env)
    try:
        print(f"{store} online store (SYNTHETIC demo):", flush=True)
        batches_beside_scores(f"127.0.0.1:{port}")
        overload(f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    run("SQLite", {"EFFORT_ONLINE_STORE": "sqlite", "EFFORT_DRAIN_SECONDS": "0"})
    with redis_online_store() as redis_url:
        run("Redis", {"EFFORT_ONLINE_STORE": "redis", "EFFORT_REDIS_URL": redis_url,
                      "EFFORT_DRAIN_SECONDS": "0"})


if __name__ == "__main__":
    main()
