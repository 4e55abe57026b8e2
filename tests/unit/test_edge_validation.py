"""Validation at the edge without a server: every field's limits, fingerprints, the ledger's conflicts."""

import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import scoring_service_pb2 as spb
from features.events import ET, Event, InvalidEvent, from_json_line, from_proto
from features.limits import MAX_CUSTOMER_VALUE, MAX_WAIT_SECONDS, timestamp_problem
from features.state import Recorded, SqliteJourneyState
from service.error_mapping import UndecodableRequest, tolerant_deserializer
from service.errors import InvalidArgument
from service.scorer import ScoreInput, validate_inputs

NOW = time.time()
INF, NAN = math.inf, math.nan


def _event(**fields: Any) -> jpb.JourneyEvent:
    """A valid contact event, changed by `fields` (a Timestamp field takes (seconds, nanos))."""
    stamps = {name: fields.pop(name) for name in ("occurred_at", "customer_since") if name in fields}
    valid: dict[str, Any] = {"event_id": "E-1", "customer_id": "C000001",
                             "type": ET.EVENT_TYPE_CONTACT, "channel": 1}
    message = jpb.JourneyEvent(**(valid | fields))
    message.occurred_at.FromSeconds(int(NOW) - 60)
    for name, stamp in stamps.items():
        if stamp is None:
            message.ClearField(name)
        else:
            getattr(message, name).seconds, getattr(message, name).nanos = stamp
    return message


EVENT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no event_id", {"event_id": ""}, "event_id"),
    ("event_id NUL", {"event_id": "E\x001"}, "event_id"),
    ("event_id newline", {"event_id": "E-1\n"}, "event_id"),
    ("event_id space", {"event_id": "E 1"}, "event_id"),
    ("event_id 129", {"event_id": "e" * 129}, "event_id"),
    ("event_id non-ASCII", {"event_id": "É-1"}, "event_id"),
    ("customer_id newline", {"customer_id": "C000001\n"}, "customer_id"),
    ("customer_id 65", {"customer_id": "C" * 65}, "customer_id"),
    ("type unspecified", {"type": 0}, "type"),
    ("type unknown", {"type": 99}, "type"),
    ("channel 99", {"channel": 99}, "channel"),
    ("channel -5", {"channel": -5}, "channel"),
    ("intent 1 MB", {"intent": "x" * 1_000_000}, "intent"),
    ("intent 65", {"intent": "x" * 65}, "intent"),
    ("intent control", {"intent": "bil\x07ling"}, "intent"),
    ("intent padded", {"intent": " billing"}, "intent"),
    ("ivr_menu tab", {"ivr_menu": "main\t"}, "ivr_menu"),
    ("ivr_menu zero width", {"ivr_menu": "ma\u200bin"}, "ivr_menu"),
    ("contact_id space", {"contact_id": "K 1"}, "contact_id"),
    ("contact_id 129", {"contact_id": "k" * 129}, "contact_id"),
    ("wait nan", {"wait_seconds": NAN}, "wait_seconds"),
    ("wait inf", {"wait_seconds": INF}, "wait_seconds"),
    ("wait negative", {"wait_seconds": -1.0}, "wait_seconds"),
    ("wait 7 days", {"wait_seconds": MAX_WAIT_SECONDS}, "wait_seconds"),
    ("sentiment nan", {"sentiment": NAN}, "sentiment"),
    ("sentiment -inf", {"sentiment": -INF}, "sentiment"),
    ("sentiment 1.01", {"sentiment": 1.01}, "sentiment"),
    ("ces 0", {"type": ET.EVENT_TYPE_SURVEY, "ces": 0}, "ces"),
    ("ces 8", {"type": ET.EVENT_TYPE_SURVEY, "ces": 8}, "ces"),
    ("survey without ces", {"type": ET.EVENT_TYPE_SURVEY}, "ces"),
    ("value inf", {"customer_value": INF}, "customer_value"),
    ("value 1e308", {"customer_value": 1e308}, "customer_value"),
    ("value nan", {"customer_value": NAN}, "customer_value"),
    ("value negative", {"customer_value": -1.0}, "customer_value"),
    ("value above cap", {"customer_value": MAX_CUSTOMER_VALUE * 1.01}, "customer_value"),
    ("no occurred_at", {"occurred_at": None}, "occurred_at"),
    ("occurred_at nanos 2e9", {"occurred_at": (int(NOW), 2_000_000_000)}, "occurred_at"),
    ("occurred_at nanos -1", {"occurred_at": (int(NOW), -1)}, "occurred_at"),
    ("occurred_at tomorrow", {"occurred_at": (int(NOW) + 86_400, 0)}, "occurred_at"),
    ("occurred_at 1999", {"occurred_at": (915_148_800, 0)}, "occurred_at"),
    ("occurred_at year 10000", {"occurred_at": (253_402_300_800, 0)}, "occurred_at"),
    ("customer_since tomorrow", {"customer_since": (int(NOW) + 86_400, 0)}, "customer_since"),
    ("customer_since nanos 2e9", {"customer_since": (1_600_000_000, 2_000_000_000)},
     "customer_since"),
    ("customer_since 1800", {"customer_since": (-5_364_662_400, 0)}, "customer_since"),
]


@pytest.mark.parametrize(("fields", "field"), [(f, n) for _, f, n in EVENT_CASES],
                         ids=[c[0] for c in EVENT_CASES])
def test_invalid_event_names_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        from_proto(_event(**fields), NOW)
    assert caught.value.field == field


def test_edge_values_inside_the_limits_are_accepted() -> None:
    event = from_proto(_event(
        event_id="a" * 128, customer_id="C" * 64, contact_id="K.1:x@y_z-" + "k" * 118, channel=7,
        intent="x" * 64, ivr_menu="billing menu", wait_seconds=0.0, sentiment=-1.0,
        customer_value=MAX_CUSTOMER_VALUE, customer_since=(-2_208_988_800, 0),
        occurred_at=(int(NOW) + 299, 999_999_999)), NOW)
    assert event.customer_value == MAX_CUSTOMER_VALUE and event.channel == 7


def test_json_records_get_the_same_checks() -> None:
    base = '"eventId": "e1", "customerId": "C000001", "type": "EVENT_TYPE_CONTACT", ' \
           '"occurredAt": "2026-11-01T10:00:00Z"'
    for extra, field in (('"waitSeconds": "Infinity"', "wait_seconds"),
                         ('"customerValue": "NaN"', "customer_value"), ('"channel": 99', "channel")):
        with pytest.raises(InvalidEvent) as caught:
            from_json_line("{" + base + ", " + extra + "}", NOW)
        assert caught.value.field == field


def test_timestamp_problem_checks_nanos_before_the_range() -> None:
    stamp = Timestamp(seconds=int(NOW), nanos=1_000_000_000)
    assert "nanos" in (timestamp_problem("t", stamp, 0.0, "1970", NOW) or "")
    assert timestamp_problem("t", Timestamp(seconds=int(NOW)), 0.0, "1970", NOW) is None


SCORE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("customer_id newline", {"customer_id": "C000001\n"}, "customer_id"),
    ("customer_id NUL", {"customer_id": "C00\x000001"}, "customer_id"),
    ("contact_id tab", {"contact_id": "K\t1"}, "contact_id"),
    ("channel 99", {"channel": 99}, "channel"),
    ("channel -5", {"channel": -5}, "channel"),
    ("intent 1 MB", {"intent": "i" * 1_000_000}, "intent"),
    ("wait inf", {"channel": 1, "queue_wait_seconds": INF}, "queue_wait_seconds"),
    ("wait nan", {"queue_wait_seconds": NAN}, "queue_wait_seconds"),
    ("wait negative", {"queue_wait_seconds": -0.5}, "queue_wait_seconds"),
    ("wait 1e308", {"queue_wait_seconds": 1e308}, "queue_wait_seconds"),
    ("ivr steps negative", {"ivr_steps_so_far": -1}, "ivr_steps_so_far"),
    ("ivr steps 1001", {"ivr_steps_so_far": 1001}, "ivr_steps_so_far"),
]


@pytest.mark.parametrize(("fields", "field"), [(f, n) for _, f, n in SCORE_CASES],
                         ids=[c[0] for c in SCORE_CASES])
def test_invalid_score_input_names_its_field(fields: dict[str, Any], field: str) -> None:
    item = ScoreInput(**({"customer_id": "C000001"} | fields))
    with pytest.raises(InvalidArgument) as caught:
        validate_inputs([item])
    assert caught.value.field == field and caught.value.reason == "INVALID_FIELD"
    with pytest.raises(InvalidArgument) as in_batch:
        validate_inputs([ScoreInput("C000002"), ScoreInput("C000003"), item], "requests")
    assert in_batch.value.field == f"requests[2].{field}"


def test_valid_score_inputs_pass() -> None:
    validate_inputs([ScoreInput("C000001"), ScoreInput(
        "C000002", "K-1", channel=7, intent="billing", queue_wait_seconds=MAX_WAIT_SECONDS - 1,
        ivr_steps_so_far=1000)])


def test_fingerprint_is_stable_across_json_and_differs_on_any_field() -> None:
    event = Event("E-1", "C000001", 1_790_000_000.123456789, ET.EVENT_TYPE_PROFILE_UPDATE,
                  customer_since=1_600_000_000.987654321, customer_value=12.5)
    again = from_json_line(event.to_json(), NOW)
    assert again.fingerprint() == event.fingerprint()
    changed = [Event("E-1", "C000002", event.occurred_at, event.type,
                     customer_since=event.customer_since, customer_value=12.5),
               Event("E-1", "C000001", event.occurred_at, event.type,
                     customer_since=event.customer_since, customer_value=12.6),
               Event("E-1", "C000001", event.occurred_at + 1.0, event.type,
                     customer_since=event.customer_since, customer_value=12.5)]
    assert len({event.fingerprint(), *(e.fingerprint() for e in changed)}) == 4


def _contact(event_id: str, customer: str, wait: float | None = None) -> Event:
    return Event(event_id, customer, NOW - 3600.0, ET.EVENT_TYPE_CONTACT, channel=1,
                 wait_seconds=wait)


def test_sqlite_ledger_tells_duplicates_from_conflicts(tmp_path: Path) -> None:
    state = SqliteJourneyState(tmp_path / "state.db")
    first = [_contact("A-1", "C000001"), _contact("A-2", "C000001", 5.0)]
    assert state.add(first, NOW) == [Recorded.ACCEPTED, Recorded.ACCEPTED]
    assert state.add([_contact("A-1", "C000002"), _contact("A-2", "C000001", 6.0),
                      _contact("A-2", "C000001", 5.0), _contact("A-3", "C000001")], NOW) == [
        Recorded.CONFLICT, Recorded.CONFLICT, Recorded.DUPLICATE, Recorded.ACCEPTED]
    # Within one batch: a later copy with other content conflicts, an identical one duplicates.
    assert state.add([_contact("B-1", "C000003"), _contact("B-1", "C000004"),
                      _contact("B-1", "C000003")], NOW) == [
        Recorded.ACCEPTED, Recorded.CONFLICT, Recorded.DUPLICATE]
    # A conflicting first copy makes its identical later copies conflicts too.
    assert state.add([_contact("B-1", "C000009"), _contact("B-1", "C000009")], NOW) == [
        Recorded.CONFLICT, Recorded.CONFLICT]
    state.close()


def test_a_ledger_from_before_fingerprints_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE seen (event_id TEXT PRIMARY KEY, occurred_at REAL NOT NULL)")
        old.execute("INSERT INTO seen VALUES ('OLD-1', ?)", (NOW - 3600.0,))
    state = SqliteJourneyState(path)
    # Without a stored fingerprint any content counts as a replay, as it did before.
    assert state.add([_contact("OLD-1", "C000777"), _contact("NEW-1", "C000777")], NOW) == [
        Recorded.DUPLICATE, Recorded.ACCEPTED]
    assert state.add([_contact("NEW-1", "C000778")], NOW) == [Recorded.CONFLICT]
    state.close()
    SqliteJourneyState(path).close()  # opening a migrated ledger again changes nothing


def test_undecodable_bytes_become_a_marker_not_an_exception() -> None:
    decode = tolerant_deserializer(spb.ScoreRequest.FromString)
    assert decode is not None and tolerant_deserializer(None) is None
    assert isinstance(decode(b"\xff\xff\xff\xff"), UndecodableRequest)
    assert isinstance(decode(b"\x0a\x02\xff\xfe"), UndecodableRequest)  # invalid UTF-8 string
    assert decode(spb.ScoreRequest(customer_id="C1").SerializeToString()).customer_id == "C1"
