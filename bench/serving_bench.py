"""Effort beside the floor of Python gRPC and the straightforward service, in one run.

Each server runs in its own process on the demo's SQLite store, then on a Redis online store that
this bench starts and fills by `feast materialize` ("effort x2": two worker processes sharing the
port); the load generator (bench/load.py) runs in this process on the same 2 cores. Prints peak
throughput ratios, p50/p99 at a fixed rate of half of each server's own peak, and the servers'
resident memory after the load (for "effort x2": the parent and both workers together).
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from load import fixed_rate, peak
from ports import free_port

PEAK_SECONDS = 8.0
RATE_SECONDS = 8.0
ROUNDS = 2


@contextmanager
def redis_online_store() -> Iterator[str]:
    """A throw-away redis-server holding the demo's latest feature rows; yields its URL."""
    from features.store import FEATURE_REPO, open_store  # heavy import, only when this bench needs it

    port = free_port()
    folder = tempfile.mkdtemp(prefix="effort-bench-redis-")
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", folder],
                              stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        store = open_store(FEATURE_REPO, "redis", url)
        print(f"materialising the demo's feature rows into Redis at {url} ...", flush=True)
        store.materialize(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def resident_mb(pid: int) -> float:
    """Resident memory of a process and its children (worker processes), in MB."""
    total = 0.0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def _start(kind: str, port: int, store_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EFFORT_METRICS_PORT": str(free_port()), **store_env,
           "EFFORT_GRPC_PORT": str(port), "EFFORT_GRPC_HOST": "127.0.0.1"}
    if kind.startswith("effort"):
        env["EFFORT_WORKERS"] = "2" if kind == "effort x2" else "1"
        command = [sys.executable, "-m", "service.cli", "serve"]
    else:
        command = [sys.executable, str(Path(__file__).parent / "baseline_servers.py"), kind,
                   str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(1.0)  # let the server finish warming up after binding
                return process
        if process.poll() is not None:
            raise SystemExit(f"{kind} server exited; run `make demo` first")
        time.sleep(0.2)
    raise SystemExit(f"{kind} server did not start")


Result = tuple[float, float, float, int, float]


def measure(kind: str, store_env: dict[str, str]) -> Result:
    """(peak calls/s, p50 ms, p99 ms at half peak, errors, resident MB) for one server."""
    port = free_port()
    process = _start(kind, port, store_env)
    try:
        address = f"127.0.0.1:{port}"
        top = asyncio.run(peak(address, PEAK_SECONDS))
        steady = asyncio.run(fixed_rate(address, top.rate / 2, RATE_SECONDS))
        memory = resident_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return (top.rate, steady.quantile(50), steady.quantile(99), top.errors + steady.errors,
            memory)


def report(store: str, results: dict[str, Result]) -> None:
    """Prints one store's table and its ratios against the floor and the straightforward service."""
    floor, straight = results["floor"][0], results["straightforward"][0]
    print(f"Score on the SYNTHETIC demo, {store} online store, same run")
    print(f"  {'server':16s} {'peak calls/s':>13s} {'p50 ms':>8s} {'p99 ms':>8s} {'RSS MB':>8s}"
          "  (latency at half peak)")
    for kind, (rate, p50, p99, errors, memory) in results.items():
        note = f"  ({errors} errors)" if errors else ""
        print(f"  {kind:16s} {rate:13,.0f} {p50:8.2f} {p99:8.2f} {memory:8.0f}{note}")
    effort = max(rate for kind, (rate, *_) in results.items() if kind.startswith("effort"))
    print(f"  best Effort / floor = {effort / floor:.2f} (goal >= 0.5); "
          f"best Effort / straightforward = {effort / straight:.2f} (goal >= 7)")


def best_of_rounds(kinds: tuple[str, ...], store_env: dict[str, str]) -> dict[str, Result]:
    """Each server measured ROUNDS times, interleaved; the round with the highest peak counts.

    This shared 2-core machine loses up to a quarter of a run to neighbours at random moments, for
    every server alike; the best round is the closest to what each server can do.
    """
    rounds = [{kind: measure(kind, store_env) for kind in kinds} for _ in range(ROUNDS)]
    return {kind: max((r[kind] for r in rounds), key=lambda result: result[0]) for kind in kinds}


def main() -> None:
    if not Path("var/models/CURRENT").is_file():
        raise SystemExit("no demo model: run `make demo` first")
    sqlite_results = best_of_rounds(("floor", "straightforward", "effort", "effort x2"),
                                    {"EFFORT_ONLINE_STORE": "sqlite"})
    with redis_online_store() as redis_url:
        redis_results = {"floor": sqlite_results["floor"], **best_of_rounds(
            ("straightforward", "effort", "effort x2"),
            {"EFFORT_ONLINE_STORE": "redis", "EFFORT_REDIS_URL": redis_url})}
    report("SQLite", sqlite_results)
    report("Redis", redis_results)


if __name__ == "__main__":
    main()
