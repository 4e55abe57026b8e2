"""Malformed input, table-driven, against a served `effort serve` process: refused naming its field."""

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from effort.v1.channel_pb2 import CHANNEL_VOICE
from features.limits import MAX_CUSTOMER_VALUE, MAX_EVENTS_PER_CALL, MAX_WAIT_SECONDS
from tests.e2e.test_edge_validation_e2e import BATCH_CASES as E2E_BATCH_CASES
from tests.e2e.test_edge_validation_e2e import EVENT_CASES as E2E_EVENT_CASES
from tests.e2e.test_edge_validation_e2e import KNOWN, _event, _refusal
from tests.e2e.test_edge_validation_e2e import SCORE_CASES as E2E_SCORE_CASES
from tests.faults.tally import ScenarioRecorder, compare_counts
from tests.unit.test_edge_validation import EVENT_CASES as UNIT_EVENT_CASES
from tests.unit.test_edge_validation import SCORE_CASES as UNIT_SCORE_CASES

SCENARIO = "malformed inputs"
INF, NAN, DAY = math.inf, math.nan, 86_400
SURVEY, PROFILE = jpb.EVENT_TYPE_SURVEY, jpb.EVENT_TYPE_PROFILE_UPDATE
# A field value given as a function is computed when the test runs (times relative to now).
Fields = dict[str, Any]


def _from_now(seconds: int, nanos: int = 0) -> Callable[[], tuple[int, int]]:
    """A Timestamp (seconds, nanos) `seconds` from the moment the test runs."""
    return lambda: (int(time.time()) + seconds, nanos)


def _resolved(fields: Fields) -> Fields:
    return {name: value() if callable(value) else value for name, value in fields.items()}


@dataclass(frozen=True)
class CallCase:
    """A request the whole call must refuse: INVALID_ARGUMENT with one ErrorInfo naming `field`."""

    name: str
    method: str  # Score, ScoreBatch or RecordEvents
    request: Message
    field: str
    reason: str = "INVALID_FIELD"


@dataclass(frozen=True)
class EventCase:
    """An event RecordEvents must reject at its index naming `field`, keeping the good ones."""

    name: str
    fields: Fields
    field: str


def _unique(*tables: tuple[str, list[tuple[str, Fields, str]]]) -> list[tuple[str, Fields, str]]:
    """The cases of several tables, each (name, field) once, the name prefixed by its source."""
    seen: set[tuple[str, str]] = set()
    cases = []
    for source, table in tables:
        for name, fields, field in table:
            if (name, field) not in seen:
                seen.add((name, field))
                cases.append((f"{source}: {name}", fields, field))
    return cases


NEW_SCORE_CASES: list[tuple[str, Fields, str]] = [
    ("customer_id trailing space", {"customer_id": "C000001 "}, "customer_id"),
    ("customer_id tab", {"customer_id": "C\t000001"}, "customer_id"),
    ("customer_id leading underscore", {"customer_id": "_C000001"}, "customer_id"),
    ("customer_id slash", {"customer_id": "C/000001"}, "customer_id"),
    ("customer_id line separator", {"customer_id": "C000001\u2028"}, "customer_id"),
    ("customer_id 1 MB", {"customer_id": "C" * 1_000_000}, "customer_id"),
    ("contact_id non-ASCII", {"contact_id": "K-é"}, "contact_id"),
    ("contact_id 1 MB", {"contact_id": "k" * 1_000_000}, "contact_id"),
    ("intent zero-width space", {"intent": "bil\u200bling"}, "intent"),
    ("intent line separator", {"intent": "bill\u2028ing"}, "intent"),
    ("intent bidi override", {"intent": "bill\u202eing"}, "intent"),
    ("intent private use", {"intent": "billing\ue000"}, "intent"),
    ("intent trailing space", {"intent": "billing "}, "intent"),
    ("intent 65 accented", {"intent": "é" * 65}, "intent"),
    ("channel int32 max", {"channel": 2**31 - 1}, "channel"),
    ("channel int32 min", {"channel": -(2**31)}, "channel"),
    ("wait negative subnormal", {"queue_wait_seconds": -5e-324}, "queue_wait_seconds"),
    ("wait just past 7 days", {"queue_wait_seconds": math.nextafter(MAX_WAIT_SECONDS, INF)},
     "queue_wait_seconds"),
    ("ivr steps int32 min", {"ivr_steps_so_far": -(2**31)}, "ivr_steps_so_far"),
]


def _score_request(fields: Fields) -> spb.ScoreRequest:
    """A Score request for a known customer, changed by `fields`."""
    values: Fields = {"customer_id": KNOWN, **fields}
    return spb.ScoreRequest(**values)


def _batch_with(size: int, bad: dict[int, Fields]) -> spb.ScoreBatchRequest:
    """A batch of `size` valid requests, the ones at the keys of `bad` changed by their fields."""
    requests = [spb.ScoreRequest(customer_id=f"C{n % 3000 + 1:06d}", channel=CHANNEL_VOICE)
                for n in range(size)]
    for index, fields in bad.items():
        for name, value in fields.items():
            setattr(requests[index], name, value)
    return spb.ScoreBatchRequest(requests=requests)


NEW_BATCH_CASES: list[tuple[str, spb.ScoreBatchRequest, str]] = [
    ("bad channel last of 10,000", _batch_with(10_000, {9_999: {"channel": 99}}),
     "requests[9999].channel"),
    ("two bad items name the first", _batch_with(6, {3: {"channel": 99}, 1: {"intent": "a\x00"}}),
     "requests[1].intent"),
    ("customer_id empty first", _batch_with(3, {0: {"customer_id": ""}}),
     "requests[0].customer_id"),
    ("wait -inf", _batch_with(4, {2: {"queue_wait_seconds": -INF}}),
     "requests[2].queue_wait_seconds"),
    ("ivr steps 1001", _batch_with(5, {4: {"ivr_steps_so_far": 1001}}),
     "requests[4].ivr_steps_so_far"),
    ("contact_id 129", _batch_with(2, {0: {"contact_id": "k" * 129}}),
     "requests[0].contact_id"),
]

CALL_CASES: list[CallCase] = [
    *(CallCase(name, "Score", _score_request(fields), field)
      for name, fields, field in _unique(("e2e", E2E_SCORE_CASES), ("unit", UNIT_SCORE_CASES),
                                         ("new", NEW_SCORE_CASES))),
    *(CallCase(f"e2e: {name}", "ScoreBatch", request, field, reason)
      for name, request, field, reason in E2E_BATCH_CASES),
    *(CallCase(f"new: {name}", "ScoreBatch", request, field)
      for name, request, field in NEW_BATCH_CASES),
    CallCase("new: 10,001 events", "RecordEvents",
             jpb.RecordEventsRequest(events=[_event()] * (MAX_EVENTS_PER_CALL + 1)), "events",
             "BATCH_TOO_LARGE"),
]

NEW_EVENT_CASES: list[tuple[str, Fields, str]] = [
    ("event_id leading dash", {"event_id": "-E1"}, "event_id"),
    ("event_id leading dot", {"event_id": ".E1"}, "event_id"),
    ("event_id line separator", {"event_id": "E-1\u2028"}, "event_id"),
    ("event_id 1 MB", {"event_id": "e" * 1_000_000}, "event_id"),
    ("customer_id NUL", {"customer_id": "C\x00000001"}, "customer_id"),
    ("customer_id leading space", {"customer_id": " C000001"}, "customer_id"),
    ("type -1", {"type": -1}, "type"),
    ("type one past the last", {"type": max(jpb.EventType.values()) + 1}, "type"),
    ("channel int32 max", {"channel": 2**31 - 1}, "channel"),
    ("intent zero-width space", {"intent": "bil\u200bling"}, "intent"),
    ("intent 65 accented", {"intent": "é" * 65}, "intent"),
    ("ivr_menu NUL", {"ivr_menu": "main\x00"}, "ivr_menu"),
    ("ivr_menu line separator", {"ivr_menu": "main\u2028menu"}, "ivr_menu"),
    ("ivr_menu 1 MB", {"ivr_menu": "m" * 1_000_000}, "ivr_menu"),
    ("contact_id NUL", {"contact_id": "K\x001"}, "contact_id"),
    ("contact_id non-ASCII", {"contact_id": "K-é"}, "contact_id"),
    ("wait negative subnormal", {"wait_seconds": -5e-324}, "wait_seconds"),
    ("sentiment just below -1", {"sentiment": math.nextafter(-1.0, -INF)}, "sentiment"),
    ("ces 9 on a contact", {"ces": 9}, "ces"),
    ("ces -1", {"type": SURVEY, "ces": -1}, "ces"),
    ("value just past the cap", {"type": PROFILE,
                                 "customer_value": math.nextafter(MAX_CUSTOMER_VALUE, INF)},
     "customer_value"),
    ("occurred_at nanos 1e9", {"occurred_at": _from_now(-60, 1_000_000_000)}, "occurred_at"),
    ("occurred_at 6 minutes ahead", {"occurred_at": _from_now(360)}, "occurred_at"),
    ("occurred_at year 1", {"occurred_at": (-62_135_596_800, 0)}, "occurred_at"),
    ("occurred_at int64 max", {"occurred_at": (2**63 - 1, 0)}, "occurred_at"),
    ("customer_since nanos -1", {"type": PROFILE, "customer_since": _from_now(-DAY, -1)},
     "customer_since"),
    ("customer_since year 10000", {"type": PROFILE, "customer_since": (253_402_300_800, 0)},
     "customer_since"),
]

EVENT_CASES: list[EventCase] = [
    EventCase(name, fields, field)
    for name, fields, field in _unique(("e2e", E2E_EVENT_CASES), ("unit", UNIT_EVENT_CASES),
                                       ("new", NEW_EVENT_CASES))]


def _method(channel: grpc.Channel, name: str) -> Callable[..., Message]:
    if name == "RecordEvents":
        return jgrpc.JourneyServiceStub(channel).RecordEvents
    return getattr(sgrpc.ScoringServiceStub(channel), name)


@pytest.mark.parametrize("case", CALL_CASES, ids=[c.name for c in CALL_CASES])
def test_malformed_call_is_invalid_argument_naming_its_field(channel: grpc.Channel,
                                                             calls: ScenarioRecorder,
                                                             case: CallCase) -> None:
    outcome = calls.call(_method(channel, case.method), case.request, timeout=30)
    assert isinstance(outcome, grpc.RpcError), f"accepted: {str(outcome)[:300]}"
    code, field, reason, message = _refusal(outcome)
    assert (code, field, reason) == (grpc.StatusCode.INVALID_ARGUMENT, case.field, case.reason)
    assert message.startswith(f"{case.field}: "), message


def _fresh_customer() -> str:
    return f"F{uuid.uuid4().hex[:12]}"


def _contacts_24h(channel: grpc.Channel, calls: ScenarioRecorder, customer_id: str) -> int:
    """The customer's contacts_24h as the served process computes it (0 when unknown)."""
    answer = calls.call(sgrpc.ScoringServiceStub(channel).Score,
                        spb.ScoreRequest(customer_id=customer_id, include_features=True),
                        timeout=10)
    assert isinstance(answer, spb.ScoreResponse) and not answer.degraded, answer
    return int(answer.features.get("contacts_24h", 0)) if answer.customer_known else 0


def _record(channel: grpc.Channel, calls: ScenarioRecorder,
            events: list[jpb.JourneyEvent]) -> jpb.RecordEventsResponse:
    answer = calls.call(jgrpc.JourneyServiceStub(channel).RecordEvents,
                        jpb.RecordEventsRequest(events=events), timeout=30)
    assert isinstance(answer, jpb.RecordEventsResponse), answer
    return answer


def _tallies(answer: jpb.RecordEventsResponse) -> tuple[int, int, int]:
    return answer.accepted, answer.duplicates, answer.rejected


@pytest.mark.parametrize("case", EVENT_CASES, ids=[c.name for c in EVENT_CASES])
def test_malformed_event_is_rejected_at_its_index_and_retries_count_the_good_one_once(
        channel: grpc.Channel, calls: ScenarioRecorder, case: EventCase) -> None:
    """The call answers OK listing the bad event at index 0 with its field; the good event beside
    it is recorded once however often the client retries the call, and the bad one never."""
    bad_customer, good_customer = _fresh_customer(), _fresh_customer()
    events = [_event(**({"customer_id": bad_customer} | _resolved(case.fields))),
              _event(good_customer)]
    first = _record(channel, calls, events)
    assert _tallies(first) == (1, 0, 1)
    assert [(r.index, r.field) for r in first.rejected_events] == [(0, case.field)]
    assert first.rejected_events[0].reason
    retried = _record(channel, calls, events)
    assert _tallies(retried) == (0, 1, 1)
    assert [(r.index, r.field) for r in retried.rejected_events] == [(0, case.field)]
    counted = _contacts_24h(channel, calls, good_customer)
    calls.events(compare_counts({good_customer: 1}, {good_customer: counted}))
    assert counted == 1
    if "customer_id" not in case.fields:
        assert _contacts_24h(channel, calls, bad_customer) == 0


def _other_customer(event: jpb.JourneyEvent) -> None:
    event.customer_id = _fresh_customer()


def _other_wait(event: jpb.JourneyEvent) -> None:
    event.wait_seconds += 1.0


def _a_second_earlier(event: jpb.JourneyEvent) -> None:
    event.occurred_at.seconds -= 1


def _other_intent(event: jpb.JourneyEvent) -> None:
    event.intent = "billing"


def _other_channel(event: jpb.JourneyEvent) -> None:
    event.channel = 2  # type: ignore[assignment]


def _other_type(event: jpb.JourneyEvent) -> None:
    event.type = jpb.EVENT_TYPE_ABANDON


def _sentiment_added(event: jpb.JourneyEvent) -> None:
    event.sentiment = -0.5


CONFLICTS: list[tuple[str, Callable[[jpb.JourneyEvent], None]]] = [
    ("other customer", _other_customer), ("other wait", _other_wait),
    ("other occurred_at", _a_second_earlier), ("other intent", _other_intent),
    ("other channel", _other_channel), ("other type", _other_type),
    ("sentiment added", _sentiment_added),
]


@pytest.mark.parametrize("in_one_call", [False, True], ids=["across calls", "in one call"])
@pytest.mark.parametrize("change", [c[1] for c in CONFLICTS], ids=[c[0] for c in CONFLICTS])
def test_a_reused_event_id_with_other_content_is_rejected_and_counts_once(
        channel: grpc.Channel, calls: ScenarioRecorder,
        change: Callable[[jpb.JourneyEvent], None], in_one_call: bool) -> None:
    customer = _fresh_customer()
    original = _event(customer, wait_seconds=30.0)
    reused = jpb.JourneyEvent()
    reused.CopyFrom(original)
    change(reused)
    if in_one_call:
        answer = _record(channel, calls, [original, reused, original])
        assert _tallies(answer) == (1, 1, 1)
        conflict_at = 1
    else:
        assert _tallies(_record(channel, calls, [original])) == (1, 0, 0)
        answer = _record(channel, calls, [reused, original])
        assert _tallies(answer) == (0, 1, 1)
        conflict_at = 0
    assert [(r.index, r.field) for r in answer.rejected_events] == [(conflict_at, "event_id")]
    assert answer.rejected_events[0].reason.startswith("EVENT_ID_CONFLICT")
    counted = _contacts_24h(channel, calls, customer)
    calls.events(compare_counts({customer: 1}, {customer: counted}))
    assert counted == 1
    if reused.customer_id != customer:
        assert _contacts_24h(channel, calls, reused.customer_id) == 0


def test_good_calls_still_answer_after_the_malformed_ones(channel: grpc.Channel,
                                                          calls: ScenarioRecorder) -> None:
    answer = calls.call(sgrpc.ScoringServiceStub(channel).ScoreBatch,
                        _batch_with(20, {}), timeout=30)
    assert isinstance(answer, spb.ScoreBatchResponse), answer
    assert len(answer.responses) == 20 and not any(r.degraded for r in answer.responses)
