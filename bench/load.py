"""A grpc.aio load generator: closed-loop peak throughput, and open-loop latency at a fixed rate."""

import asyncio
import gc
import random
import statistics
import time
from dataclasses import dataclass

import grpc

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc

CUSTOMERS = [f"C{n:06d}" for n in range(1, 10_001)]


@dataclass(frozen=True)
class LoadResult:
    """What a load run measured."""

    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def quantile(self, q: int) -> float:
        """Latency percentile q (1-99) in milliseconds."""
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1] if len(
            self.latencies_ms) > 1 else float("nan")


async def _call(stub: pb_grpc.ScoringServiceStub, latencies: list[float],
                errors: list[int]) -> None:
    started = time.perf_counter()
    try:
        await stub.Score(pb.ScoreRequest(customer_id=random.choice(CUSTOMERS)), timeout=5)
        latencies.append((time.perf_counter() - started) * 1000)
    except grpc.aio.AioRpcError:
        errors.append(1)


CONNECTIONS = 8  # separate HTTP/2 connections, so that SO_REUSEPORT workers all get some


def _channels(address: str) -> list[grpc.aio.Channel]:
    # A distinct option per channel keeps gRPC from sharing one subchannel between them.
    return [grpc.aio.insecure_channel(address, options=[("grpc.channel_id", n)])
            for n in range(CONNECTIONS)]


async def peak(address: str, seconds: float, concurrency: int = 32) -> LoadResult:
    """Closed loop: `concurrency` calls always in flight for `seconds`."""
    latencies: list[float] = []
    errors: list[int] = []
    channels = _channels(address)
    stubs = [pb_grpc.ScoringServiceStub(channel) for channel in channels]
    for n in range(50):  # warm-up, every connection
        await _call(stubs[n % len(stubs)], [], [])
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        while time.perf_counter() < stop:
            await _call(stubs[k % len(stubs)], latencies, errors)

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    for channel in channels:
        await channel.close(None)
    return LoadResult(len(latencies), len(errors), elapsed, latencies)


async def fixed_rate(address: str, rate: float, seconds: float) -> LoadResult:
    """Open loop: calls start on schedule at `rate` per second whatever the answers do."""
    latencies: list[float] = []
    errors: list[int] = []
    channels = _channels(address)
    stubs = [pb_grpc.ScoringServiceStub(channel) for channel in channels]
    for n in range(40):
        await _call(stubs[n % len(stubs)], [], [])
    tasks = []
    gc.disable()  # the generator's own collections would show up as server latency
    started = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_call(stubs[n % len(stubs)], latencies, errors)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    gc.enable()
    for channel in channels:
        await channel.close(None)
    return LoadResult(len(latencies), len(errors), elapsed, latencies)
