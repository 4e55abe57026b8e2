"""Event validation: bad events are rejected with the field at fault, good ones round-trip."""

import time
from pathlib import Path

import pytest

from features.events import ET, Event, InvalidEvent, customer_id_problem, from_json_line

NOW = time.time()


def line(**fields: object) -> str:
    import json

    record = {"eventId": "e1", "customerId": "C000001", "occurredAt": "2026-11-01T10:00:00Z",
              "type": "EVENT_TYPE_CONTACT", "channel": "CHANNEL_VOICE"} | fields
    return json.dumps({k: v for k, v in record.items() if v is not None})


def test_valid_line_parses() -> None:
    event = from_json_line(line(waitSeconds=12.5, sentiment=-0.2), NOW)
    assert event.type == ET.EVENT_TYPE_CONTACT and event.channel == 1
    assert event.wait_seconds == 12.5 and event.sentiment == -0.2


@pytest.mark.parametrize(("fields", "field"), [
    ({"eventId": None}, "event_id"),
    ({"customerId": ""}, "customer_id"),
    ({"type": "EVENT_TYPE_TELEPATHY"}, "type"),
    ({"type": None}, "type"),
    ({"occurredAt": "2099-01-01T00:00:00Z"}, "occurred_at"),
    ({"occurredAt": None}, "occurred_at"),
    ({"sentiment": 3}, "sentiment"),
    ({"type": "EVENT_TYPE_SURVEY"}, "ces"),
    ({"type": "EVENT_TYPE_SURVEY", "ces": 9}, "ces"),
])
def test_invalid_events_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        from_json_line(line(**fields), NOW)
    assert caught.value.field == field


def test_unparsable_lines_are_rejected() -> None:
    with pytest.raises(InvalidEvent):
        from_json_line("{not json", NOW)
    with pytest.raises(InvalidEvent):
        from_json_line(line(occurredAt="yesterday"), NOW)


def test_json_round_trip_keeps_every_field() -> None:
    event = Event(event_id="e9", customer_id="C000009", occurred_at=1_790_000_000.25,
                  type=ET.EVENT_TYPE_PROFILE_UPDATE, channel=6, intent="x", wait_seconds=1.5,
                  sentiment=0.0, resolved=False, ces=None, ivr_menu="m", contact_id="k",
                  customer_since=1_700_000_000.0, customer_value=0.0)
    assert from_json_line(event.to_json(), NOW) == event


def test_customer_id_rules() -> None:
    assert customer_id_problem("C000001") is None
    assert customer_id_problem("") and customer_id_problem("a b") and customer_id_problem("é")


def test_parquet_events_read_like_json_lines(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from features.event_files import read_events

    events = [
        Event("p1", "C000001", 1_790_000_000.5, ET.EVENT_TYPE_CONTACT, channel=2, intent="billing",
              wait_seconds=30.0, sentiment=-0.5),
        Event("p2", "C000001", 1_790_000_100.0, ET.EVENT_TYPE_PROFILE_UPDATE,
              customer_since=1_700_000_000.0, customer_value=900.0),
    ]
    records = [json.loads(e.to_json()) for e in events]
    frame = pd.DataFrame.from_records(records)
    for column in ("occurredAt", "customerSince"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False)
    bad = tmp_path / "bad.parquet"
    frame.assign(type=["EVENT_TYPE_NOPE", "EVENT_TYPE_CONTACT"]).to_parquet(bad, index=False)
    assert list(read_events(path, NOW)) == events
    parsed = list(read_events(bad, NOW))
    assert isinstance(parsed[0], InvalidEvent) and parsed[0].field == "type"
