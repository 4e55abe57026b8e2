"""An open-loop Score flood from h2load (nghttp2's C load generator), for overload beyond what a
Python client on the same cores can offer; its answers are counted, not judged (h2load sees
HTTP/2 streams, not gRPC status codes)."""

import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from effort.v1 import scoring_service_pb2 as pb

H2LOAD = "h2load"
CLIENTS = 4  # HTTP/2 connections
MAX_STREAMS = 512  # in flight per connection


@dataclass(frozen=True)
class FloodResult:
    """What h2load reported."""

    requests: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def h2load_available() -> bool:
    """True when h2load is on the PATH (Debian's nghttp2-client; `make bench` installs it)."""
    return shutil.which(H2LOAD) is not None


def grpc_body(request: pb.ScoreRequest) -> bytes:
    """One gRPC message as sent on the wire: a 5-byte prefix (not compressed, length), then it."""
    data = request.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


def flood(address: str, rate: float, seconds: float, deadline_ms: int = 1000) -> FloodResult:
    """Sends Score calls at `rate` per second for `seconds`, each with a `deadline_ms` deadline."""
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "score.bin"
        body.write_bytes(grpc_body(pb.ScoreRequest(customer_id="C000123", channel="CHANNEL_VOICE")))
        run = subprocess.run(
            [H2LOAD, "-n", str(int(rate * seconds)), "-c", str(CLIENTS), "-m", str(MAX_STREAMS),
             "--rps", f"{rate / CLIENTS:.1f}", "-d", str(body),
             "-H", "content-type: application/grpc", "-H", "te: trailers",
             "-H", f"grpc-timeout: {deadline_ms}m",
             f"http://{address}/effort.v1.ScoringService/Score"],
            capture_output=True, text=True, check=True)
    finished = re.search(r"finished in ([\d.]+)(m?s),", run.stdout)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", run.stdout)
    if not finished or not done:
        raise RuntimeError(f"unexpected h2load output: {run.stdout[-500:]}")
    elapsed = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    return FloodResult(int(done.group(1)), elapsed)
