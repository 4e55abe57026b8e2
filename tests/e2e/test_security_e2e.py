"""`effort serve` with mutual TLS, bearer tokens and JSON Web Tokens, over real TLS handshakes on
loopback: every RPC answers the right code and ErrorInfo for each kind of bad credential, checked
before any work; tokens never reach the log; a non-loopback bind without TLS refuses to start."""

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from effort.v1 import admin_service_pb2 as apb
from effort.v1 import admin_service_pb2_grpc as agrpc
from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.events import Event
from service.channels import bearer_metadata, open_channel
from service.overload_guard import haproxy_binary
from service.tokens import add_token, revoke_token
from tests.e2e.test_serve_process import COMMAND, _env
from tests.helpers import DemoWorld, free_port, run_effort, wait_serving, wait_until
from tests.helpers_tls import TlsPaths, write_certificates

ISSUER = "https://idp.example.test/"
AUDIENCE = "effort"
KID = "test-key-1"


@dataclass
class Secured:
    """A running `effort serve` with mTLS and authentication, and the credentials to call it."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path
    tls: TlsPaths
    tokens: dict[str, str]
    sign: Callable[..., str]
    front: str  # "direct", or "guard" when reached through the overload guard

    def channel(self, cert: bool = True) -> grpc.Channel:
        return open_channel(f"localhost:{self.port}", self.tls.ca,
                            self.tls.client_cert if cert else None,
                            self.tls.client_key if cert else None)


def _jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}


def _front(kind: str) -> dict[str, str]:
    """The settings of a server reached `direct`ly or through the overload `guard` (HAProxy,
    which then ends TLS and checks client certificates)."""
    if kind == "direct":
        return {}
    if haproxy_binary() is None:
        pytest.skip("haproxy is not installed (`make haproxy`)")
    return {"EFFORT_OVERLOAD_GUARD": "true"}


@pytest.fixture(scope="module", params=["direct", "guard"])
def secured(request: pytest.FixtureRequest, demo_world: DemoWorld,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    front = _front(request.param)
    root = tmp_path_factory.mktemp("secured")
    tls = write_certificates(root / "pki")
    token_file = root / "tokens.json"
    tokens = {name: add_token(token_file, name, scopes) for name, scopes in (
        ("router", ["score"]), ("loader", ["record"]), ("ops", ["admin"]),
        ("everything", ["score", "record", "admin"]), ("gone", ["score", "record", "admin"]))}
    revoke_token(token_file, "gone")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (root / "jwks.json").write_text(json.dumps(_jwks(key)))

    def sign(scope: str = "score record admin", audience: str = AUDIENCE,
             expires_in: float = 300, subject: str = "idp-client") -> str:
        now = int(time.time())
        return jwt.encode({"iss": ISSUER, "aud": audience, "sub": subject, "scope": scope,
                           "iat": now, "exp": now + int(expires_in)}, key, algorithm="RS256",
                          headers={"kid": KID})

    port = free_port()
    env = {**_env(demo_world.models_dir, demo_world.repo, port),
           "EFFORT_TLS_CERT_FILE": str(tls.server_cert), "EFFORT_TLS_KEY_FILE": str(tls.server_key),
           "EFFORT_TLS_CLIENT_CA_FILE": str(tls.ca), "EFFORT_AUTH_TOKENS_FILE": str(token_file),
           "EFFORT_AUTH_JWKS_FILE": str(root / "jwks.json"), "EFFORT_AUTH_JWT_ISSUER": ISSUER,
           "EFFORT_AUTH_JWT_AUDIENCE": AUDIENCE, "EFFORT_LOG_LEVEL": "DEBUG", **front}
    log = root / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    running = Secured(process, port, int(env["EFFORT_METRICS_PORT"]), log, tls, tokens, sign,
                      request.param)
    try:
        wait_serving(port, process, log=log, connect=lambda address: open_channel(
            address, tls.ca, tls.client_cert, tls.client_key))
        yield running
    finally:
        process.terminate()
        process.wait(timeout=60)


def _event(n: int) -> jpb.JourneyEvent:
    return Event(f"security-{n}-{time.time_ns()}", "C000001", time.time() - 5, 1, channel=1).to_proto()


# Each RPC with a request that would succeed and the scope it needs.
CALLS: dict[str, tuple[Callable[[grpc.Channel], Any], Any, str]] = {
    "Score": (lambda c: sgrpc.ScoringServiceStub(c).Score,
              spb.ScoreRequest(customer_id="C000001"), "score"),
    "ScoreBatch": (lambda c: sgrpc.ScoringServiceStub(c).ScoreBatch,
                   spb.ScoreBatchRequest(requests=[spb.ScoreRequest(customer_id="C000002")]),
                   "score"),
    "RecordEvents": (lambda c: jgrpc.JourneyServiceStub(c).RecordEvents,
                     jpb.RecordEventsRequest(events=[_event(0)]), "record"),
    "GetModel": (lambda c: agrpc.AdminServiceStub(c).GetModel, apb.GetModelRequest(), "admin"),
    "ReloadModel": (lambda c: agrpc.AdminServiceStub(c).ReloadModel, apb.ReloadModelRequest(),
                    "admin"),
}
SCOPED_TOKEN = {"score": "router", "record": "loader", "admin": "ops"}
WRONG_SCOPE_TOKEN = {"score": "loader", "record": "ops", "admin": "router"}


def _call(secured: Secured, rpc: str, token: str | None) -> tuple[grpc.StatusCode, Any]:
    stub, request, _ = CALLS[rpc]
    with secured.channel() as channel:
        try:
            stub(channel)(request, timeout=10, metadata=bearer_metadata(token))
            return grpc.StatusCode.OK, None
        except grpc.RpcError as error:
            return error.code(), error


def _reason(error: Any) -> str:
    status = rpc_status.from_call(error)
    assert status is not None and len(status.details) == 1, status
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "effort.v1"
    return info.reason


@pytest.mark.parametrize("rpc", list(CALLS))
def test_each_rpc_answers_each_bad_credential_with_its_code_and_reason(secured: Secured,
                                                                       rpc: str) -> None:
    scope = CALLS[rpc][2]
    cases = {
        "no token": (None, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
        "revoked token": (secured.tokens["gone"], grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        "made-up token": ("eff_not-a-real-token", grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        "expired JWT": (secured.sign(expires_in=-120), grpc.StatusCode.UNAUTHENTICATED,
                        "TOKEN_EXPIRED"),
        "JWT for another audience": (secured.sign(audience="someone-else"),
                                     grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        "token without the scope": (secured.tokens[WRONG_SCOPE_TOKEN[scope]],
                                    grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING"),
        "JWT without the scope": (secured.sign(scope="nothing-useful"),
                                  grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING"),
    }
    for case, (token, code, reason) in cases.items():
        got, error = _call(secured, rpc, token)
        assert got == code, (rpc, case, got)
        assert _reason(error) == reason, (rpc, case)
        assert token is None or token not in error.details(), (rpc, case)
    for case, token in {"token with the scope": secured.tokens[SCOPED_TOKEN[scope]],
                        "JWT with the scope": secured.sign(scope=scope)}.items():
        assert _call(secured, rpc, token)[0] == grpc.StatusCode.OK, (rpc, case)


def test_refused_calls_do_no_work(secured: Secured) -> None:
    """A write refused for its token records nothing: the same event then counts as new."""
    event = _event(1)
    stub = jgrpc.JourneyServiceStub
    with secured.channel() as channel:
        with pytest.raises(grpc.RpcError):
            stub(channel).RecordEvents(jpb.RecordEventsRequest(events=[event]), timeout=10,
                                       metadata=bearer_metadata(secured.tokens["router"]))
        answer = stub(channel).RecordEvents(jpb.RecordEventsRequest(events=[event]), timeout=10,
                                            metadata=bearer_metadata(secured.tokens["loader"]))
    assert (answer.accepted, answer.duplicates) == (1, 0)


def test_health_needs_no_token_and_reflection_needs_a_valid_one(secured: Secured) -> None:
    with secured.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo

        def services(token: str | None) -> list[str]:
            answers = reflect(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                              timeout=5, metadata=bearer_metadata(token))
            return [s.name for a in answers for s in a.list_services_response.service]

        with pytest.raises(grpc.RpcError) as refused:
            services(None)
        # HAProxy 2.6 may turn a server's early end of a stream the client still sends on into
        # CANCELLED (docs/reliability.md, Overload guard); unary calls are not affected.
        assert refused.value.code() in ({grpc.StatusCode.UNAUTHENTICATED} if secured.front ==
                                        "direct" else {grpc.StatusCode.UNAUTHENTICATED,
                                                       grpc.StatusCode.CANCELLED})
        assert "effort.v1.AdminService" in services(secured.tokens["router"])


def test_tls_is_required_and_mutual(secured: Secured) -> None:
    health = health_pb2.HealthCheckRequest()
    with grpc.insecure_channel(f"127.0.0.1:{secured.port}") as plaintext, pytest.raises(
            grpc.RpcError) as refused:
        health_pb2_grpc.HealthStub(plaintext).Check(health, timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with secured.channel(cert=False) as no_certificate, pytest.raises(grpc.RpcError) as refused:
        health_pb2_grpc.HealthStub(no_certificate).Check(health, timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_admin_service_reports_the_model_and_reloads(secured: Secured,
                                                     demo_world: DemoWorld) -> None:
    metadata = bearer_metadata(secured.tokens["ops"])
    with secured.channel() as channel:
        admin = agrpc.AdminServiceStub(channel)
        model = admin.GetModel(apb.GetModelRequest(), timeout=5, metadata=metadata).model
        reload = admin.ReloadModel(apb.ReloadModelRequest(), timeout=60, metadata=metadata)
    assert model.version == demo_world.version and model.synthetic_data
    assert model.feature_count > 20 and 0 < model.churn_risk_threshold < 1
    assert "churn_roc_auc" in model.test_metrics and model.loaded_at.seconds > 0
    assert reload.outcome == apb.ReloadModelResponse.OUTCOME_UNCHANGED
    assert reload.current_version == demo_world.version and not reload.refusal


def test_refusals_are_counted_by_reason_and_tokens_never_logged(secured: Secured) -> None:
    _call(secured, "Score", None)
    page = urllib.request.urlopen(f"http://127.0.0.1:{secured.metrics_port}/metrics",
                                  timeout=10).read().decode()
    counted = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
               for line in page.splitlines() if line.startswith("effort_auth_failures_total{")}
    assert set(counted) == {f'reason="{r}"' for r in (
        "token_missing", "token_invalid", "token_expired", "scope_missing")}
    assert all(value > 0 for value in counted.values()), counted
    log = secured.log.read_text()
    assert all(token not in log and token not in page for token in secured.tokens.values())
    # Writes and admin calls leave an audit line with the client's name.
    audit = [json.loads(line) for line in log.splitlines() if '"effort.audit"' in line]
    assert any("loader" in line["message"] and "RecordEvents" in line["message"]
               for line in audit), audit[-5:]
    assert any("ops" in line["message"] and "ReloadModel" in line["message"] for line in audit)


def test_a_non_loopback_bind_without_tls_refuses_to_start(demo_world: DemoWorld) -> None:
    env = {**_env(demo_world.models_dir, demo_world.repo, free_port()), "EFFORT_GRPC_HOST": "0.0.0.0"}
    run = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve 0.0.0.0 without TLS" in lines[0], run.stderr
    assert "EFFORT_ALLOW_INSECURE" in lines[0]


def _effort(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_effort(*args, variables={"EFFORT_TOKEN": token} if token else None)


def test_effort_score_and_ingest_reach_the_server_with_tls_and_a_token(
        secured: Secured, tmp_path: Path) -> None:
    tls = ["--address", f"localhost:{secured.port}", "--ca", str(secured.tls.ca),
           "--cert", str(secured.tls.client_cert), "--key", str(secured.tls.client_key)]
    scored = _effort("score", "C000003", *tls, token=secured.tokens["router"])
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["customerId"] == "C000003"
    refused = _effort("score", "C000003", *tls)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "UNAUTHENTICATED" in refused.stderr

    events = tmp_path / "events.jsonl"
    events.write_text("".join(json_line(n) for n in range(5)))
    ingested = _effort("ingest", str(events), *tls, "--token", secured.tokens["loader"])
    assert ingested.returncode == 0, ingested.stderr
    assert ingested.stdout.splitlines()[0] == "5 accepted, 0 duplicates, 0 rejected"
    again = _effort("ingest", str(events), *tls, token=secured.tokens["loader"])
    assert again.stdout.splitlines()[0] == "0 accepted, 5 duplicates, 0 rejected", again.stdout


def json_line(n: int) -> str:
    return Event(f"ingest-{n}-{time.time_ns()}", "C000004", time.time() - 60, 1,
                 channel=1).to_json() + "\n"


@pytest.mark.parametrize("front", ["direct", "guard"])
def test_a_rotated_certificate_is_served_without_restart(demo_world: DemoWorld, tmp_path: Path,
                                                         front: str) -> None:
    first = write_certificates(tmp_path / "first")
    second = write_certificates(tmp_path / "second")
    serving = tmp_path / "serving"
    serving.mkdir()
    cert, key = serving / "server.pem", serving / "server.key"
    cert.write_bytes(first.server_cert.read_bytes())
    key.write_bytes(first.server_key.read_bytes())
    port = free_port()
    env = {**_env(demo_world.models_dir, demo_world.repo, port),
           "EFFORT_TLS_CERT_FILE": str(cert), "EFFORT_TLS_KEY_FILE": str(key), **_front(front)}
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_serving(port, process, log=log,
                     connect=lambda address: open_channel(address, first.ca))

        def health(ca: Path) -> grpc.StatusCode:
            with open_channel(f"localhost:{port}", ca) as channel:
                try:
                    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=5)
                    return grpc.StatusCode.OK
                except grpc.RpcError as error:
                    return error.code()

        assert health(first.ca) == grpc.StatusCode.OK
        assert health(second.ca) == grpc.StatusCode.UNAVAILABLE
        # Rotate as a secret volume does: new files renamed into place.
        (serving / "new.pem").write_bytes(second.server_cert.read_bytes())
        (serving / "new.key").write_bytes(second.server_key.read_bytes())
        (serving / "new.key").replace(key)
        (serving / "new.pem").replace(cert)
        # The server sees it at the next handshake, the guard within TLS_POLL_SECONDS.
        wait_until(lambda: health(second.ca) == grpc.StatusCode.OK, 15, "the new certificate")
        assert health(first.ca) == grpc.StatusCode.UNAVAILABLE
        assert process.poll() is None  # the same process throughout
    finally:
        process.terminate()
        process.wait(timeout=60)
