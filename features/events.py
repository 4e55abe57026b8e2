"""Journey events: the in-memory form, conversion from proto/JSON, and validation."""

import hashlib
import json
import math
import time
from dataclasses import dataclass, fields
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from effort.v1 import journey_service_pb2 as journey_pb
from features.limits import (
    EARLIEST_CUSTOMER_SINCE,
    EARLIEST_EPOCH,
    KNOWN_EVENT_TYPES,
    MAX_CES,
    MAX_CUSTOMER_VALUE,
    MAX_SENTIMENT,
    MAX_WAIT_SECONDS,
    MIN_CES,
    MIN_SENTIMENT,
    channel_problem,
    customer_id_problem,
    id_problem,
    label_problem,
    range_problem,
    timestamp_problem,
)

ET = journey_pb  # enum values live on the module: ET.EVENT_TYPE_CONTACT, ...


class InvalidEvent(ValueError):
    """An event that cannot be recorded; `field` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """One validated journey event; times are UTC epoch seconds."""

    event_id: str
    customer_id: str
    occurred_at: float
    type: int
    channel: int = 0
    intent: str = ""
    wait_seconds: float | None = None
    sentiment: float | None = None
    resolved: bool | None = None
    ces: int | None = None
    ivr_menu: str = ""
    contact_id: str = ""
    customer_since: float | None = None
    customer_value: float | None = None

    def to_proto(self) -> journey_pb.JourneyEvent:
        """The proto form of this event."""
        message = journey_pb.JourneyEvent(
            event_id=self.event_id, customer_id=self.customer_id, type=self.type,  # type: ignore[arg-type]
            channel=self.channel, intent=self.intent, ivr_menu=self.ivr_menu,  # type: ignore[arg-type]
            contact_id=self.contact_id,
        )
        _set_time(message.occurred_at, self.occurred_at)
        for name in ("wait_seconds", "sentiment", "resolved", "ces", "customer_value"):
            value = getattr(self, name)
            if value is not None:
                setattr(message, name, value)
        if self.customer_since is not None:
            _set_time(message.customer_since, self.customer_since)
        return message

    def to_json(self) -> str:
        """One JSON Lines record in the proto3 JSON mapping."""
        return json_format.MessageToJson(self.to_proto(), indent=None)

    def fingerprint(self) -> str:
        """A short hash of every field: an event_id reused with other content has another one.

        Times are taken in their Timestamp precision, so an event and its JSON round trip (whose
        times can differ in the last float bits) share a fingerprint.
        """
        content = tuple(_timestamp_precision(getattr(self, name)) if name in _TIME_FIELDS
                        else getattr(self, name) for name in _FIELD_NAMES)
        return hashlib.blake2b(repr(content).encode(), digest_size=8).hexdigest()


_FIELD_NAMES = tuple(f.name for f in fields(Event))
_TIME_FIELDS = frozenset({"occurred_at", "customer_since"})


def _epoch(stamp: Timestamp) -> float:
    # seconds + nanos keeps sub-second values exact where ToNanoseconds() / 1e9 would not.
    return stamp.seconds + stamp.nanos / 1e9


def _seconds_and_nanos(epoch: float) -> tuple[int, int]:
    seconds = math.floor(epoch)
    return seconds, min(999_999_999, round((epoch - seconds) * 1e9))


def _set_time(stamp: Timestamp, epoch: float) -> None:
    stamp.seconds, stamp.nanos = _seconds_and_nanos(epoch)


def _timestamp_precision(epoch: float | None) -> float | None:
    """The epoch as it reads back from its Timestamp form (the same value once it has been there)."""
    if epoch is None:
        return None
    seconds, nanos = _seconds_and_nanos(epoch)
    return seconds + nanos / 1e9


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def from_proto(message: journey_pb.JourneyEvent, now: float | None = None) -> Event:
    """Validates a JourneyEvent and returns its in-memory form; raises InvalidEvent.

    Every field is checked against features/limits.py: ids, enum values, label lengths, finite
    numbers in range, well-formed timestamps not in the future.
    """
    now = time.time() if now is None else now
    _check("event_id", id_problem("event_id", message.event_id))
    _check("customer_id", customer_id_problem(message.customer_id))
    if message.type not in KNOWN_EVENT_TYPES:
        raise InvalidEvent("type", f"unknown or unspecified event type {message.type}")
    if not message.HasField("occurred_at"):
        raise InvalidEvent("occurred_at", "occurred_at is required")
    _check("occurred_at", timestamp_problem("occurred_at", message.occurred_at, EARLIEST_EPOCH,
                                            "2000-01-01", now))
    _check("channel", channel_problem("channel", message.channel))
    _check("intent", label_problem("intent", message.intent))
    _check("ivr_menu", label_problem("ivr_menu", message.ivr_menu))
    _check("contact_id", id_problem("contact_id", message.contact_id, required=False))
    sentiment = _optional(message, "sentiment")
    if sentiment is not None:
        _check("sentiment", range_problem("sentiment", sentiment, MIN_SENTIMENT, MAX_SENTIMENT))
    wait = _optional(message, "wait_seconds")
    if wait is not None:
        _check("wait_seconds", range_problem("wait_seconds", wait, 0.0, MAX_WAIT_SECONDS,
                                             high_included=False))
    ces = _optional(message, "ces")
    if message.type == ET.EVENT_TYPE_SURVEY and ces is None:
        raise InvalidEvent("ces", "a survey event needs its CES answer")
    if ces is not None:
        _check("ces", range_problem("ces", ces, MIN_CES, MAX_CES))
    value = _optional(message, "customer_value")
    if value is not None:
        _check("customer_value", range_problem("customer_value", value, 0.0, MAX_CUSTOMER_VALUE))
    since = None
    if message.HasField("customer_since"):
        _check("customer_since", timestamp_problem(
            "customer_since", message.customer_since, EARLIEST_CUSTOMER_SINCE, "1900-01-01", now))
        since = _epoch(message.customer_since)
    return Event(
        event_id=message.event_id, customer_id=message.customer_id,
        occurred_at=_epoch(message.occurred_at), type=message.type, channel=message.channel,
        intent=message.intent, wait_seconds=wait, sentiment=sentiment,
        resolved=_optional(message, "resolved"), ces=ces, ivr_menu=message.ivr_menu,
        contact_id=message.contact_id, customer_since=since, customer_value=value,
    )


def _check(field: str, problem: str | None) -> None:
    if problem is not None:
        raise InvalidEvent(field, problem)


def from_json_line(line: str, now: float | None = None) -> Event:
    """Parses and validates one JSON Lines record; raises InvalidEvent."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InvalidEvent("line", f"not JSON: {error.msg}") from None
    return from_mapping(record, now)


def from_mapping(record: Any, now: float | None = None) -> Event:
    """Validates a proto3-JSON-shaped mapping (a JSON object or a Parquet row)."""
    if not isinstance(record, dict):
        raise InvalidEvent("line", "a record must be a JSON object")
    message = journey_pb.JourneyEvent()
    try:
        json_format.ParseDict(record, message)
    except json_format.ParseError as error:
        field = _field_named_in(str(error), record)
        raise InvalidEvent(field, str(error).splitlines()[0]) from None
    return from_proto(message, now)


def _field_named_in(message: str, record: dict[str, Any]) -> str:
    for key in record:
        if f'"{key}"' in message or f"field {key}" in message or f".{key}" in message:
            return key
    return "record"
