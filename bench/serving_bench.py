"""Effort beside the floor of Python gRPC and the straightforward service, in one run.

Each server runs in its own process on the demo's SQLite store ("effort x2": two worker
processes sharing the port); the load generator (bench/load.py)
runs in this process on the same 2 cores. Prints peak throughput ratios and p50/p99 at a fixed
rate of half of each server's own peak.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from load import fixed_rate, peak

PEAK_SECONDS = 8.0
RATE_SECONDS = 8.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(kind: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EFFORT_GRPC_PORT": str(port), "EFFORT_GRPC_HOST": "127.0.0.1",
           "EFFORT_METRICS_PORT": str(_free_port())}
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


def measure(kind: str) -> tuple[float, float, float, int]:
    """(peak calls/s, p50 ms, p99 ms at half peak, errors) for one server."""
    port = _free_port()
    process = _start(kind, port)
    try:
        address = f"127.0.0.1:{port}"
        top = asyncio.run(peak(address, PEAK_SECONDS))
        steady = asyncio.run(fixed_rate(address, top.rate / 2, RATE_SECONDS))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return top.rate, steady.quantile(50), steady.quantile(99), top.errors + steady.errors


def main() -> None:
    if not Path("var/models/CURRENT").is_file():
        raise SystemExit("no demo model: run `make demo` first")
    results = {kind: measure(kind) for kind in ("floor", "straightforward", "effort", "effort x2")}
    floor, straight = results["floor"][0], results["straightforward"][0]
    print("Score on the SYNTHETIC demo, SQLite online store, one process each, same run")
    print(f"  {'server':16s} {'peak calls/s':>13s} {'p50 ms':>8s} {'p99 ms':>8s}  at half peak")
    for kind, (rate, p50, p99, errors) in results.items():
        note = f"  ({errors} errors)" if errors else ""
        print(f"  {kind:16s} {rate:13,.0f} {p50:8.2f} {p99:8.2f}{note}")
    effort = max(results["effort"][0], results["effort x2"][0])
    print(f"  best Effort / floor = {effort / floor:.2f} (goal >= 0.5); "
          f"best Effort / straightforward = {effort / straight:.2f} (goal >= 7)")


if __name__ == "__main__":
    main()
