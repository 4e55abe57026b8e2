"""Malformed input against a real server over loopback: each is refused naming its field, nothing
of it is stored, and good calls right after still work (SQLite and Redis stores)."""

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.limits import MAX_EVENTS_PER_CALL
from service.server import RunningServer
from tests.helpers import wait_until

INF, NAN = math.inf, math.nan
KNOWN = "C000005"  # a demo customer with a stored journey
NOW = int(time.time())
DAY = 86_400


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def _refusal(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, str, str]:
    """(code, ErrorInfo field, ErrorInfo reason, status message) of a refused call with exactly
    one ErrorInfo in the effort.v1 domain."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None and len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.domain == "effort.v1"
    return error.code(), info.metadata["field"], info.reason, status.message


def _score(grpc_channel: grpc.Channel, customer_id: str = KNOWN,
           **fields: Any) -> spb.ScoreResponse:
    return sgrpc.ScoringServiceStub(grpc_channel).Score(
        spb.ScoreRequest(customer_id=customer_id, **fields), timeout=10)


SCORE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("customer_id empty", {"customer_id": ""}, "customer_id"),
    ("customer_id newline", {"customer_id": "C000001\n"}, "customer_id"),
    ("customer_id NUL", {"customer_id": "C000001\x00"}, "customer_id"),
    ("customer_id leading space", {"customer_id": " C000001"}, "customer_id"),
    ("customer_id 65", {"customer_id": "C" * 65}, "customer_id"),
    ("customer_id non-ASCII", {"customer_id": "C00000é"}, "customer_id"),
    ("contact_id space", {"contact_id": "K 1"}, "contact_id"),
    ("contact_id NUL", {"contact_id": "K\x001"}, "contact_id"),
    ("contact_id 129", {"contact_id": "k" * 129}, "contact_id"),
    ("contact_id leading dash", {"contact_id": "-K1"}, "contact_id"),
    ("channel 99", {"channel": 99}, "channel"),
    ("channel -5", {"channel": -5}, "channel"),
    ("channel 8", {"channel": 8}, "channel"),
    ("intent 65", {"intent": "x" * 65}, "intent"),
    ("intent 1 MB", {"intent": "x" * 1_000_000}, "intent"),
    ("intent newline", {"intent": "billing\n"}, "intent"),
    ("intent NUL", {"intent": "bil\x00ling"}, "intent"),
    ("intent padded", {"intent": " billing"}, "intent"),
    ("wait inf with channel", {"channel": 1, "queue_wait_seconds": INF}, "queue_wait_seconds"),
    ("wait inf", {"queue_wait_seconds": INF}, "queue_wait_seconds"),
    ("wait -inf", {"channel": 2, "queue_wait_seconds": -INF}, "queue_wait_seconds"),
    ("wait nan", {"channel": 1, "queue_wait_seconds": NAN}, "queue_wait_seconds"),
    ("wait negative", {"channel": 1, "queue_wait_seconds": -1.0}, "queue_wait_seconds"),
    ("wait 1e308", {"channel": 1, "queue_wait_seconds": 1e308}, "queue_wait_seconds"),
    ("wait 7 days", {"channel": 1, "queue_wait_seconds": 7.0 * DAY}, "queue_wait_seconds"),
    ("ivr steps negative", {"channel": 1, "ivr_steps_so_far": -1}, "ivr_steps_so_far"),
    ("ivr steps 1001", {"channel": 1, "ivr_steps_so_far": 1001}, "ivr_steps_so_far"),
    ("ivr steps int32 max", {"ivr_steps_so_far": 2**31 - 1}, "ivr_steps_so_far"),
]


@pytest.mark.parametrize(("fields", "field"), [(f, n) for _, f, n in SCORE_CASES],
                         ids=[c[0] for c in SCORE_CASES])
def test_bad_score_request_is_refused_naming_the_field(channel: grpc.Channel,
                                                       fields: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _score(channel, **({"customer_id": KNOWN} | fields))
    code, named, reason, message = _refusal(caught.value)
    assert (code, named, reason) == (grpc.StatusCode.INVALID_ARGUMENT, field, "INVALID_FIELD")
    assert message.startswith(f"{field}: ")
    assert _score(channel, channel=1, queue_wait_seconds=30.0).customer_known  # good call after


def _batch(bad_at: int, **fields: Any) -> spb.ScoreBatchRequest:
    requests = [spb.ScoreRequest(customer_id=f"C{n:06d}", channel="CHANNEL_VOICE")
                for n in range(1, 6)]
    requests[bad_at].MergeFrom(spb.ScoreRequest(**fields))
    if "customer_id" in fields:
        requests[bad_at].customer_id = fields["customer_id"]
    return spb.ScoreBatchRequest(requests=requests)


BATCH_CASES: list[tuple[str, spb.ScoreBatchRequest, str, str]] = [
    ("wait inf", _batch(3, queue_wait_seconds=INF), "requests[3].queue_wait_seconds",
     "INVALID_FIELD"),
    ("wait nan", _batch(0, queue_wait_seconds=NAN), "requests[0].queue_wait_seconds",
     "INVALID_FIELD"),
    ("channel 99", _batch(1, channel=99), "requests[1].channel", "INVALID_FIELD"),
    ("customer_id newline", _batch(2, customer_id="C000002\n"), "requests[2].customer_id",
     "INVALID_FIELD"),
    ("intent long", _batch(4, intent="i" * 65), "requests[4].intent", "INVALID_FIELD"),
    ("ivr steps negative", _batch(1, ivr_steps_so_far=-3), "requests[1].ivr_steps_so_far",
     "INVALID_FIELD"),
    ("contact_id control", _batch(2, contact_id="K\n"), "requests[2].contact_id",
     "INVALID_FIELD"),
    ("empty", spb.ScoreBatchRequest(), "requests", "INVALID_FIELD"),
    ("too many", spb.ScoreBatchRequest(requests=[spb.ScoreRequest(customer_id="C000001")] * 10_001),
     "requests", "BATCH_TOO_LARGE"),
]


@pytest.mark.parametrize(("request_", "field", "reason"), [c[1:] for c in BATCH_CASES],
                         ids=[c[0] for c in BATCH_CASES])
def test_bad_batch_is_refused_naming_the_item_field(channel: grpc.Channel,
                                                    request_: spb.ScoreBatchRequest, field: str,
                                                    reason: str) -> None:
    stub = sgrpc.ScoringServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreBatch(request_, timeout=30)
    assert _refusal(caught.value)[:3] == (grpc.StatusCode.INVALID_ARGUMENT, field, reason)
    good = stub.ScoreBatch(_batch(0), timeout=30)
    assert [r.customer_id for r in good.responses] == [f"C{n:06d}" for n in range(1, 6)]


def _event(customer_id: str = KNOWN, **fields: Any) -> jpb.JourneyEvent:
    """A valid contact event a minute old with a fresh event_id, changed by `fields`; a Timestamp
    field takes (seconds, nanos), or None to leave it out."""
    stamps = {"occurred_at": (NOW - 60, 0)} | {
        name: fields.pop(name) for name in ("occurred_at", "customer_since") if name in fields}
    valid: dict[str, Any] = {"event_id": f"V-{uuid.uuid4().hex}", "customer_id": customer_id,
                             "type": jpb.EVENT_TYPE_CONTACT, "channel": 1}
    message = jpb.JourneyEvent(**(valid | fields))
    for name, stamp in stamps.items():
        if stamp is not None:
            getattr(message, name).seconds, getattr(message, name).nanos = stamp
    return message


EVENT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("event_id empty", {"event_id": ""}, "event_id"),
    ("event_id NUL", {"event_id": "E\x00-1"}, "event_id"),
    ("event_id newline", {"event_id": "E-1\n"}, "event_id"),
    ("event_id space", {"event_id": "E 1"}, "event_id"),
    ("event_id 129", {"event_id": "e" * 129}, "event_id"),
    ("event_id slash", {"event_id": "E/1"}, "event_id"),
    ("customer_id newline", {"customer_id": f"{KNOWN}\n"}, "customer_id"),
    ("customer_id empty", {"customer_id": ""}, "customer_id"),
    ("type unspecified", {"type": 0}, "type"),
    ("type 99", {"type": 99}, "type"),
    ("channel 99", {"channel": 99}, "channel"),
    ("channel -5", {"channel": -5}, "channel"),
    ("intent 1 MB", {"intent": "x" * 1_000_000}, "intent"),
    ("intent control", {"intent": "billing\r"}, "intent"),
    ("ivr_menu 65", {"ivr_menu": "m" * 65}, "ivr_menu"),
    ("ivr_menu tab", {"ivr_menu": "main\tmenu"}, "ivr_menu"),
    ("contact_id space", {"contact_id": "K 1"}, "contact_id"),
    ("contact_id 129", {"contact_id": "k" * 129}, "contact_id"),
    ("wait nan", {"wait_seconds": NAN}, "wait_seconds"),
    ("wait inf", {"wait_seconds": INF}, "wait_seconds"),
    ("wait negative", {"wait_seconds": -1.0}, "wait_seconds"),
    ("wait 1e308", {"wait_seconds": 1e308}, "wait_seconds"),
    ("sentiment nan", {"sentiment": NAN}, "sentiment"),
    ("sentiment 1.5", {"sentiment": 1.5}, "sentiment"),
    ("sentiment -inf", {"sentiment": -INF}, "sentiment"),
    ("ces 0", {"type": jpb.EVENT_TYPE_SURVEY, "ces": 0}, "ces"),
    ("ces 8", {"type": jpb.EVENT_TYPE_SURVEY, "ces": 8}, "ces"),
    ("survey without ces", {"type": jpb.EVENT_TYPE_SURVEY}, "ces"),
    ("value inf", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE, "customer_value": INF}, "customer_value"),
    ("value 1e308", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE, "customer_value": 1e308},
     "customer_value"),
    ("value -1", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE, "customer_value": -1.0}, "customer_value"),
    ("value nan", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE, "customer_value": NAN}, "customer_value"),
    ("value 2e9", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE, "customer_value": 2e9}, "customer_value"),
    ("occurred_at missing", {"occurred_at": None}, "occurred_at"),
    ("occurred_at nanos 2e9", {"occurred_at": (NOW - 60, 2_000_000_000)}, "occurred_at"),
    ("occurred_at nanos -1", {"occurred_at": (NOW - 60, -1)}, "occurred_at"),
    ("occurred_at tomorrow", {"occurred_at": (NOW + DAY, 0)}, "occurred_at"),
    ("occurred_at 1999", {"occurred_at": (915_148_800, 0)}, "occurred_at"),
    ("occurred_at year 10000", {"occurred_at": (253_402_300_800, 0)}, "occurred_at"),
    ("occurred_at 401 days ago", {"occurred_at": (NOW - 401 * DAY, 0)}, "occurred_at"),
    ("customer_since tomorrow", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE,
                                 "customer_since": (NOW + DAY, 0)}, "customer_since"),
    ("customer_since nanos 2e9", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE,
                                  "customer_since": (NOW - DAY, 2_000_000_000)}, "customer_since"),
    ("customer_since 1800", {"type": jpb.EVENT_TYPE_PROFILE_UPDATE,
                             "customer_since": (-5_364_662_400, 0)}, "customer_since"),
]


@pytest.mark.parametrize(("fields", "field"), [(f, n) for _, f, n in EVENT_CASES],
                         ids=[c[0] for c in EVENT_CASES])
def test_bad_event_is_rejected_naming_the_field(channel: grpc.Channel, fields: dict[str, Any],
                                                field: str) -> None:
    """A bad event does not fail its call (the contract): it is listed in rejected_events with
    the field at fault, and the good event beside it is recorded."""
    fresh = f"F{uuid.uuid4().hex[:10]}"
    good = _event(fresh)
    answer = jgrpc.JourneyServiceStub(channel).RecordEvents(
        jpb.RecordEventsRequest(events=[_event(**fields), good]), timeout=10)
    assert (answer.accepted, answer.duplicates, answer.rejected) == (1, 0, 1)
    assert [(r.index, r.field) for r in answer.rejected_events] == [(0, field)]
    assert answer.rejected_events[0].reason
    assert _score(channel, fresh).customer_known


def test_known_customer_scores_after_its_bad_events_are_refused(channel: grpc.Channel) -> None:
    before = _score(channel, include_features=True)
    bad = [_event(**fields) for _, fields, _ in EVENT_CASES if "customer_id" not in fields]
    bad += [_event(type=jpb.EVENT_TYPE_PROFILE_UPDATE, customer_value=value)
            for value in (INF, 1e308, NAN)]
    answer = jgrpc.JourneyServiceStub(channel).RecordEvents(
        jpb.RecordEventsRequest(events=bad), timeout=30)
    assert (answer.accepted, answer.duplicates, answer.rejected) == (0, 0, len(bad))
    after = _score(channel, channel=1, queue_wait_seconds=20.0, include_features=True)
    assert after.customer_known and not after.degraded
    assert after.features["customer_value"] == before.features["customer_value"]
    assert math.isfinite(after.effort_score) and math.isfinite(after.value_at_risk)


def test_reused_event_id_with_other_content_is_a_conflict(channel: grpc.Channel) -> None:
    journey = jgrpc.JourneyServiceStub(channel)
    first, other = f"F{uuid.uuid4().hex[:10]}", f"F{uuid.uuid4().hex[:10]}"
    original = _event(first, wait_seconds=30.0)
    assert journey.RecordEvents(jpb.RecordEventsRequest(events=[original])).accepted == 1
    other_customer = jpb.JourneyEvent()
    other_customer.CopyFrom(original)
    other_customer.customer_id = other
    other_wait = jpb.JourneyEvent()
    other_wait.CopyFrom(original)
    other_wait.wait_seconds = 31.0
    renamed = _event(other)
    renamed_copy = jpb.JourneyEvent()
    renamed_copy.CopyFrom(renamed)
    renamed_copy.intent = "billing"
    answer = journey.RecordEvents(jpb.RecordEventsRequest(
        events=[other_customer, original, other_wait, renamed, renamed_copy]))
    assert (answer.accepted, answer.duplicates, answer.rejected) == (1, 1, 3)
    assert [(r.index, r.field) for r in answer.rejected_events] == [
        (0, "event_id"), (2, "event_id"), (4, "event_id")]
    assert all(r.reason.startswith("EVENT_ID_CONFLICT") for r in answer.rejected_events)
    # The other customer holds only its own event: the conflicting copy was not recorded.
    scored = _score(channel, other, include_features=True)
    assert scored.customer_known and scored.features["contacts_24h"] == 1


def _handled(service: str, method: str, code: str) -> float:
    return REGISTRY.get_sample_value("grpc_server_handled_total", {
        "grpc_type": "UNARY", "grpc_service": service, "grpc_method": method,
        "grpc_code": code}) or 0.0


GARBAGE_CASES: list[tuple[str, str, bytes]] = [
    ("Score wire type 7", "/effort.v1.ScoringService/Score", b"\xff\xff\xff\xff"),
    ("Score invalid UTF-8", "/effort.v1.ScoringService/Score", b"\x0a\x02\xff\xfe"),
    ("Score length past the end", "/effort.v1.ScoringService/Score", b"\x0a\x10C0001"),
    ("ScoreBatch truncated item", "/effort.v1.ScoringService/ScoreBatch", b"\x0a\x05\x0a\x09C1"),
    ("RecordEvents varint overflow", "/effort.v1.JourneyService/RecordEvents", b"\x08" + b"\xff" * 11),
    ("Health garbage", "/grpc.health.v1.Health/Check", b"\x0f\x0f\x0f"),
]


@pytest.mark.parametrize(("method", "payload"), [c[1:] for c in GARBAGE_CASES],
                         ids=[c[0] for c in GARBAGE_CASES])
def test_undecodable_bytes_are_invalid_argument_and_counted(channel: grpc.Channel, method: str,
                                                            payload: bytes) -> None:
    service, name = method.strip("/").split("/")
    before = _handled(service, name, "INVALID_ARGUMENT")
    raw = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as caught:
        raw(payload, timeout=10)
    assert _refusal(caught.value)[:3] == (grpc.StatusCode.INVALID_ARGUMENT, "request",
                                          "UNDECODABLE_REQUEST")
    # The status reaches the client before the server's interceptor counts the call.
    wait_until(lambda: _handled(service, name, "INVALID_ARGUMENT") == before + 1, 5,
               "grpc_server_handled_total to count the call")
    assert _score(channel).customer_known


def test_too_many_events_fail_the_call(channel: grpc.Channel) -> None:
    events = [_event()] * (MAX_EVENTS_PER_CALL + 1)
    with pytest.raises(grpc.RpcError) as caught:
        jgrpc.JourneyServiceStub(channel).RecordEvents(jpb.RecordEventsRequest(events=events))
    assert _refusal(caught.value)[:3] == (grpc.StatusCode.INVALID_ARGUMENT, "events",
                                          "BATCH_TOO_LARGE")
