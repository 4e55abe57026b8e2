"""Shared test helpers: free ports, waiting on a condition or a server, listening sockets, the demo world."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
from grpc_health.v1 import health_pb2, health_pb2_grpc

SIM_END = datetime(2026, 11, 1, tzinfo=UTC)
SIM_CUSTOMERS = 3000


@dataclass(frozen=True)
class DemoWorld:
    """Files of a small simulated world and a model trained on it."""

    events: Path
    labels: Path
    models_dir: Path
    version: str
    repo: Path
    frame: pd.DataFrame


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie not yet reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Callable[[], bool], seconds: float = 30.0, what: str = "condition",
               poll: float = 0.02) -> None:
    """Returns as soon as `condition()` holds; fails the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(poll)


def wait_serving(port: int, process: subprocess.Popen[Any], what: str = "effort serve",
                 log: Path | None = None,
                 connect: Callable[[str], grpc.Channel] = grpc.insecure_channel) -> None:
    """Returns once the server on `port` answers health SERVING; fails if `process` exits first
    (with its log, when given) or after 120 s. `connect` opens a channel to an address (for a
    TLS server, one with its certificates)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited: {log.read_text() if log else ''}"
        try:
            with connect(f"127.0.0.1:{port}") as channel:
                status = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not start")


def listening_sockets(port: int) -> int:
    """How many sockets listen on a TCP port (several with SO_REUSEPORT), from /proc/net."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "0A":  # 0A: LISTEN
                count += 1
    return count


def run_effort(*args: str, variables: Mapping[str, str] | None = None, cwd: Path | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`effort ARGS` in its own process, with only the EFFORT_* `variables` given (any case of the
    prefix cleared from this process's environment, as pydantic-settings reads any case)."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("EFFORT_")}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**clean, **(variables or {})})
