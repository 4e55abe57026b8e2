"""Garbage request bytes to each method of a served process: INVALID_ARGUMENT, counted in its metrics."""

import random
import socket

import grpc
import pytest

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from tests.e2e.test_edge_validation_e2e import GARBAGE_CASES as E2E_GARBAGE_CASES
from tests.e2e.test_edge_validation_e2e import _refusal
from tests.faults.served import ServedProcess
from tests.faults.tally import ScenarioRecorder, code_name

SCENARIO = "garbage bytes"
SCORE = "/effort.v1.ScoringService/Score"
BATCH = "/effort.v1.ScoringService/ScoreBatch"
RECORD = "/effort.v1.JourneyService/RecordEvents"
HEALTH = "/grpc.health.v1.Health/Check"


def _random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


GARBAGE_CASES: list[tuple[str, str, bytes]] = [
    *((f"e2e: {name}", method, payload) for name, method, payload in E2E_GARBAGE_CASES),
    ("new: Score group start without end", SCORE, b"\x0b"),
    ("new: Score lone group end", SCORE, b"\x0c"),
    ("new: Score field number 0", SCORE, b"\x00\x01"),
    ("new: Score truncated varint", SCORE, b"\x18\xff"),
    ("new: Score cut inside a UTF-8 character", SCORE, b"\x1a\x03\xe2\x80"),
    ("new: Score 64 KB random", SCORE, _random_bytes(1, 65_536)),
    ("new: ScoreBatch item with invalid UTF-8", BATCH, b"\x0a\x04\x0a\x02\xff\xfe"),
    ("new: ScoreBatch item length 4 GB", BATCH, b"\x0a\x80\x80\x80\x80\x10"),
    ("new: ScoreBatch 64 KB random", BATCH, _random_bytes(2, 65_536)),
    ("new: RecordEvents event with a truncated Timestamp", RECORD, b"\x0a\x04\x1a\x02\x08"),
    ("new: RecordEvents event_id with a UTF-16 surrogate", RECORD, b"\x0a\x05\x0a\x03\xed\xa0\x80"),
    ("new: RecordEvents Timestamp past its event", RECORD, b"\x0a\x03\x1a\x05\x08"),
    ("new: RecordEvents 64 KB random", RECORD, _random_bytes(3, 65_536)),
    ("new: Health service name with invalid UTF-8", HEALTH, b"\x0a\x02\xff\xff"),
    ("new: Health 1 KB random", HEALTH, _random_bytes(4, 1024)),
]


def _handled(served: ServedProcess, service: str, method: str, code: str) -> float:
    return served.metric("grpc_server_handled_total", grpc_service=service, grpc_method=method,
                         grpc_code=code)


def _good_call_answers(channel: grpc.Channel, calls: ScenarioRecorder) -> None:
    answer = calls.call(sgrpc.ScoringServiceStub(channel).Score,
                        spb.ScoreRequest(customer_id="C000005"), timeout=10)
    assert isinstance(answer, spb.ScoreResponse) and answer.customer_known, answer


@pytest.mark.parametrize(("method", "payload"), [c[1:] for c in GARBAGE_CASES],
                         ids=[c[0] for c in GARBAGE_CASES])
def test_garbage_bytes_are_undecodable_request_and_counted(
        fault_server: ServedProcess, channel: grpc.Channel, calls: ScenarioRecorder, method: str,
        payload: bytes) -> None:
    service, name = method.strip("/").split("/")
    before = _handled(fault_server, service, name, "INVALID_ARGUMENT")
    raw = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    outcome = calls.call(raw, payload, timeout=10)
    assert isinstance(outcome, grpc.RpcError), f"accepted: {outcome!r:.200}"
    assert _refusal(outcome)[:3] == (grpc.StatusCode.INVALID_ARGUMENT, "request",
                                     "UNDECODABLE_REQUEST")
    fault_server.wait_metric("grpc_server_handled_total", before + 1, grpc_service=service,
                             grpc_method=name, grpc_code="INVALID_ARGUMENT")
    _good_call_answers(channel, calls)


def test_a_request_past_the_size_limit_is_refused_not_failed(
        channel: grpc.Channel, calls: ScenarioRecorder) -> None:
    """5 MB of garbage, past gRPC's 4 MB receive limit: refused by gRPC before any handler, with
    RESOURCE_EXHAUSTED, never UNKNOWN or INTERNAL."""
    raw = channel.unary_unary(SCORE, request_serializer=None, response_deserializer=None)
    outcome = calls.call(raw, _random_bytes(5, 5 * 2**20), timeout=30)
    assert isinstance(outcome, grpc.RpcError)
    assert code_name(outcome) == "RESOURCE_EXHAUSTED"
    _good_call_answers(channel, calls)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CONNECTION_GARBAGE: list[tuple[str, bytes]] = [
    ("random bytes instead of HTTP/2", _random_bytes(6, 4096)),
    ("HTTP/1.1 request", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("HTTP/2 preface then random frames", HTTP2_PREFACE + _random_bytes(7, 4096)),
    ("HTTP/2 preface then a 16 MB frame header", HTTP2_PREFACE + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01"),
]


@pytest.mark.parametrize("garbage", [c[1] for c in CONNECTION_GARBAGE],
                         ids=[c[0] for c in CONNECTION_GARBAGE])
def test_garbage_on_the_connection_leaves_the_server_serving(
        fault_server: ServedProcess, channel: grpc.Channel, calls: ScenarioRecorder,
        garbage: bytes) -> None:
    with socket.create_connection(("127.0.0.1", fault_server.port), timeout=10) as sock:
        sock.sendall(garbage)
        sock.settimeout(2)
        try:
            while sock.recv(65_536):  # until the server closes the connection (or goes quiet)
                pass
        except (TimeoutError, ConnectionResetError):
            pass
    assert fault_server.process is not None and fault_server.process.poll() is None
    _good_call_answers(channel, calls)
