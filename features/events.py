"""Journey events: the in-memory form, conversion from proto/JSON, and validation."""

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from effort.v1 import journey_service_pb2 as journey_pb
from features.domain import DAY

ET = journey_pb  # enum values live on the module: ET.EVENT_TYPE_CONTACT, ...
KNOWN_EVENT_TYPES = frozenset(
    v.number for v in journey_pb.EventType.DESCRIPTOR.values if v.number != 0
)
MAX_FUTURE_SECONDS = 300.0  # clock skew tolerated between event producers and Effort
EARLIEST_EPOCH = 946684800.0  # 2000-01-01: older timestamps are unset or mis-scaled fields
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")


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


def _epoch(stamp: Timestamp) -> float:
    # seconds + nanos keeps sub-second values exact where ToNanoseconds() / 1e9 would not.
    return stamp.seconds + stamp.nanos / 1e9


def _set_time(stamp: Timestamp, epoch: float) -> None:
    seconds = math.floor(epoch)
    stamp.seconds, stamp.nanos = seconds, min(999_999_999, round((epoch - seconds) * 1e9))


def customer_id_problem(customer_id: str) -> str | None:
    """Why a customer id is unusable, or None when it is fine."""
    if not customer_id:
        return "customer_id is required"
    if not _ID_PATTERN.match(customer_id):
        return "customer_id must be 1-64 letters, digits or _.:@- starting with a letter or digit"
    return None


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def from_proto(message: journey_pb.JourneyEvent, now: float | None = None) -> Event:
    """Validates a JourneyEvent and returns its in-memory form; raises InvalidEvent."""
    now = time.time() if now is None else now
    if not message.event_id:
        raise InvalidEvent("event_id", "event_id is required")
    if len(message.event_id) > 128:
        raise InvalidEvent("event_id", "event_id is longer than 128 characters")
    problem = customer_id_problem(message.customer_id)
    if problem:
        raise InvalidEvent("customer_id", problem)
    if message.type not in KNOWN_EVENT_TYPES:
        raise InvalidEvent("type", f"unknown or unspecified event type {message.type}")
    if not message.HasField("occurred_at"):
        raise InvalidEvent("occurred_at", "occurred_at is required")
    occurred_at = _epoch(message.occurred_at)
    if occurred_at < EARLIEST_EPOCH:
        raise InvalidEvent("occurred_at", "occurred_at is before 2000-01-01")
    if occurred_at > now + MAX_FUTURE_SECONDS:
        raise InvalidEvent("occurred_at", "occurred_at is more than 5 minutes in the future")
    sentiment = _optional(message, "sentiment")
    if sentiment is not None and not -1.0 <= sentiment <= 1.0:
        raise InvalidEvent("sentiment", "sentiment must lie in [-1, 1]")
    wait = _optional(message, "wait_seconds")
    if wait is not None and not 0.0 <= wait < 7 * DAY:
        raise InvalidEvent("wait_seconds", "wait_seconds must lie in [0, 7 days)")
    ces = _optional(message, "ces")
    if message.type == ET.EVENT_TYPE_SURVEY and ces is None:
        raise InvalidEvent("ces", "a survey event needs its CES answer")
    if ces is not None and not 1 <= ces <= 7:
        raise InvalidEvent("ces", "ces must be 1 to 7")
    value = _optional(message, "customer_value")
    if value is not None and not value >= 0.0:
        raise InvalidEvent("customer_value", "customer_value must not be negative")
    since = _epoch(message.customer_since) if message.HasField("customer_since") else None
    return Event(
        event_id=message.event_id, customer_id=message.customer_id, occurred_at=occurred_at,
        type=message.type, channel=message.channel, intent=message.intent,
        wait_seconds=wait, sentiment=sentiment, resolved=_optional(message, "resolved"), ces=ces,
        ivr_menu=message.ivr_menu, contact_id=message.contact_id, customer_since=since,
        customer_value=value,
    )


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
