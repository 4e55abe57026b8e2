"""Measures what TLS, mutual TLS and token checks cost per Score call on the SYNTHETIC demo.

Starts `effort serve` once per set-up on free loopback ports, all in this run, and compares each
with plaintext and no authentication: Score latency one call at a time over a kept connection
(the usual case: a router holds its channel open), and the cost of a new TLS connection.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ports import free_port

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc
from service.authentication import Authenticator
from service.authorization import authorize
from service.channels import bearer_metadata, open_channel
from service.tokens import add_token

CUSTOMERS = [f"C{n:06d}" for n in range(1, 10_001)]
CALLS = 3000
ROUNDS = 3


@dataclass(frozen=True)
class SetUp:
    """One way of serving, with what a client needs to reach it."""

    name: str
    env: dict[str, str]
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None


def set_ups(folder: Path) -> list[SetUp]:
    """Plaintext; TLS; mutual TLS; a token on plaintext; TLS with a token."""
    ca, client_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = client_ca.issue_cert("bench-client")
    paths = {name: folder / name for name in ("ca.pem", "server.pem", "server.key",
                                               "client-ca.pem", "client.pem", "client.key")}
    ca.cert_pem.write_to_path(str(paths["ca.pem"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server.pem"]))
    server.private_key_pem.write_to_path(str(paths["server.key"]))
    client_ca.cert_pem.write_to_path(str(paths["client-ca.pem"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client.pem"]))
    client.private_key_pem.write_to_path(str(paths["client.key"]))
    tokens = folder / "tokens.json"
    token = add_token(tokens, "bench", ["score"])
    tls = {"EFFORT_TLS_CERT_FILE": str(paths["server.pem"]),
           "EFFORT_TLS_KEY_FILE": str(paths["server.key"])}
    auth = {"EFFORT_AUTH_TOKENS_FILE": str(tokens)}
    return [
        SetUp("plaintext, no authentication", {}),
        SetUp("TLS", tls, paths["ca.pem"]),
        SetUp("mutual TLS", {**tls, "EFFORT_TLS_CLIENT_CA_FILE": str(paths["client-ca.pem"])},
              paths["ca.pem"], paths["client.pem"], paths["client.key"]),
        SetUp("token, plaintext", auth, token=token),
        SetUp("TLS and token", {**tls, **auth}, paths["ca.pem"], token=token),
    ]


def start(set_up: SetUp) -> tuple[subprocess.Popen[bytes], str]:
    """`effort serve` with the set-up's settings, once health says SERVING."""
    port = free_port()
    env = {**os.environ, **set_up.env, "EFFORT_GRPC_PORT": str(port),
           "EFFORT_METRICS_PORT": str(free_port()), "EFFORT_GRPC_HOST": "127.0.0.1",
           "EFFORT_MODEL_POLL_SECONDS": "0", "EFFORT_STORE_CHECK_SECONDS": "0",
           "EFFORT_DRAIN_SECONDS": "0"}
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"localhost:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"effort serve ({set_up.name}) exited; run `make demo` first")
        try:
            with connect(set_up, address) as channel:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=1)
                return process, address
        except grpc.RpcError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"effort serve ({set_up.name}) did not start within 120 s")


def connect(set_up: SetUp, address: str) -> grpc.Channel:
    """A channel to the server with the set-up's certificates."""
    return open_channel(address, set_up.ca, set_up.cert, set_up.key)


def latencies(set_up: SetUp, address: str) -> list[float]:
    """Milliseconds per Score, one at a time on one kept channel."""
    metadata = bearer_metadata(set_up.token)
    with connect(set_up, address) as channel:
        stub = pb_grpc.ScoringServiceStub(channel)

        def call(i: int) -> None:
            stub.Score(pb.ScoreRequest(customer_id=CUSTOMERS[i % len(CUSTOMERS)]), timeout=5,
                       metadata=metadata)

        for i in range(300):  # warm-up
            call(i)
        return timed(call, CALLS)


def new_connections(set_up: SetUp, address: str, count: int = 100) -> list[float]:
    """Milliseconds for a new channel's first Score: connection, handshake and call."""
    metadata = bearer_metadata(set_up.token)

    def call(i: int) -> None:
        with connect(set_up, address) as channel:
            pb_grpc.ScoringServiceStub(channel).Score(
                pb.ScoreRequest(customer_id=CUSTOMERS[i]), timeout=5, metadata=metadata)

    return timed(call, count)


def timed(call: Callable[[int], None], count: int) -> list[float]:
    """Milliseconds of each of `count` calls."""
    out = []
    for i in range(count):
        started = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def check_cost(folder: Path, count: int = 20_000) -> dict[str, float]:
    """CPU microseconds per call of the whole check the interceptor makes (token to client and
    scope), in process: an opaque token from the token file, and an ES256 JSON Web Token."""
    tokens = folder / "tokens-cost.json"
    token = add_token(tokens, "cost", ["score"])
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k",
           "alg": "ES256"}
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    signed = jwt.encode({"iss": "bench", "aud": "effort", "sub": "idp", "scope": "score",
                         "exp": int(time.time()) + 3600}, key, algorithm="ES256",
                        headers={"kid": "k"})
    authenticator = Authenticator(tokens, folder / "jwks.json", "bench", "effort")
    method = "/effort.v1.ScoringService/Score"

    def per_call(bearer: str) -> float:
        metadata = [("authorization", f"Bearer {bearer}")]
        started = time.process_time()
        for _ in range(count):
            authorize(authenticator, method, metadata)
        return (time.process_time() - started) / count * 1e6

    return {"token file": per_call(token), "JWT (ES256)": per_call(signed)}


def main() -> None:
    if not Path("var/models/CURRENT").is_file():
        raise SystemExit("no demo model: run `make demo` first")
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        costs = check_cost(Path(scratch))
        ups = set_ups(Path(scratch))
        # Rounds alternate the set-ups, so that a slow moment of the machine hits them all.
        for round_number in range(1, ROUNDS + 1):
            for set_up in ups:
                print(f"round {round_number}/{ROUNDS}: {set_up.name}", file=sys.stderr, flush=True)
                process, address = start(set_up)
                try:
                    figures = results.setdefault(set_up.name, {"kept": [], "new": []})
                    figures["kept"] += latencies(set_up, address)
                    figures["new"] += new_connections(set_up, address)
                finally:
                    process.terminate()
                    process.wait(timeout=30)
    base = results[ups[0].name]
    base_p50 = statistics.median(base["kept"])
    base_new = statistics.median(base["new"])
    print(f"Score over loopback on the SYNTHETIC demo: {ROUNDS} rounds x {CALLS:,} calls on a kept "
          "channel, and 100 new channels per round; ratios against plaintext in the same run")
    print(f"  {'set-up':30s} {'p50 ms':>7s} {'p99 ms':>7s} {'p50 ratio':>9s} {'extra us':>9s}"
          f" {'new channel p50 ms':>19s}")
    for name, figures in results.items():
        q = statistics.quantiles(figures["kept"], n=100)
        p50 = statistics.median(figures["kept"])
        new = statistics.median(figures["new"])
        print(f"  {name:30s} {p50:7.3f} {q[98]:7.3f} {p50 / base_p50:9.3f} "
              f"{(p50 - base_p50) * 1000:9.0f} {new:10.2f} ({new / base_new:.2f}x)")
    print("  The token check alone, in process (CPU per call, the interceptor's whole check):")
    for name, micros in costs.items():
        print(f"    {name:28s} {micros:6.1f} us")


if __name__ == "__main__":
    main()
