"""The limits every request field is held to at the edge, and the checks that apply them."""

import math
import re
import unicodedata

from google.protobuf.timestamp_pb2 import Timestamp

from effort.v1 import channel_pb2
from effort.v1 import journey_service_pb2 as journey_pb
from features.domain import DAY

MAX_EVENTS_PER_CALL = 10_000
# Ids: ASCII letters and digits, then also _ . : @ -; nothing else (no spaces, controls or NUL).
CUSTOMER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")  # event_id, contact_id
MAX_CUSTOMER_ID_LENGTH = 64
MAX_ID_LENGTH = 128
MAX_LABEL_LENGTH = 64  # intent, ivr_menu
# Control, format, private-use, surrogate and line/paragraph-separator characters.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})

KNOWN_CHANNELS = frozenset(v.number for v in channel_pb2.Channel.DESCRIPTOR.values)
KNOWN_EVENT_TYPES = frozenset(
    v.number for v in journey_pb.EventType.DESCRIPTOR.values if v.number != 0
)

MAX_WAIT_SECONDS = 7 * DAY  # queue_wait_seconds and wait_seconds lie in [0, 7 days)
MAX_IVR_STEPS = 1000
MIN_SENTIMENT, MAX_SENTIMENT = -1.0, 1.0
MIN_CES, MAX_CES = 1, 7
MAX_CUSTOMER_VALUE = 1e9

MAX_NANOS = 999_999_999
MAX_FUTURE_SECONDS = 300.0  # clock skew tolerated between event producers and Effort
EARLIEST_EPOCH = 946684800.0  # 2000-01-01: older occurred_at values are unset or mis-scaled
EARLIEST_CUSTOMER_SINCE = -2208988800.0  # 1900-01-01


def id_problem(name: str, value: str, required: bool = True) -> str | None:
    """Why an event_id or contact_id is unusable, or None when it is fine (or absent and optional)."""
    if not value:
        return f"{name} is required" if required else None
    if len(value) > MAX_ID_LENGTH:
        return f"{name} is longer than {MAX_ID_LENGTH} characters"
    if not ID_PATTERN.fullmatch(value):
        return f"{name} must be letters, digits or _.:@- starting with a letter or digit"
    return None


def customer_id_problem(customer_id: str) -> str | None:
    """Why a customer id is unusable, or None when it is fine."""
    if not customer_id:
        return "customer_id is required"
    if not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
        return (f"customer_id must be 1-{MAX_CUSTOMER_ID_LENGTH} letters, digits or _.:@- "
                "starting with a letter or digit")
    return None


def label_problem(name: str, value: str) -> str | None:
    """Why an intent or IVR menu label is unusable, or None when it is fine (empty is fine)."""
    if len(value) > MAX_LABEL_LENGTH:
        return f"{name} is longer than {MAX_LABEL_LENGTH} characters"
    if value != value.strip():
        return f"{name} must not start or end with white space"
    if any(unicodedata.category(c) in _UNPRINTABLE_CATEGORIES for c in value):
        return f"{name} must not hold control or format characters"
    return None


def range_problem(name: str, value: float, low: float, high: float,
                  high_included: bool = True) -> str | None:
    """Why a number is not finite or lies outside [low, high] (or [low, high)), or None."""
    inside = low <= value <= high if high_included else low <= value < high
    if math.isfinite(value) and inside:
        return None
    return f"{name} must be a finite number in [{low:g}, {high:g}{']' if high_included else ')'}"


def channel_problem(name: str, channel: int) -> str | None:
    """Why a Channel value is unusable, or None; CHANNEL_UNSPECIFIED (0) is allowed."""
    return None if channel in KNOWN_CHANNELS else f"{name} {channel} is not a known Channel"


def timestamp_problem(name: str, stamp: Timestamp, earliest: float, earliest_text: str,
                      now: float) -> str | None:
    """Why a Timestamp is malformed, before `earliest` (epoch seconds) or in the future beyond the
    tolerated skew, or None."""
    if not 0 <= stamp.nanos <= MAX_NANOS:
        return f"{name} nanos must lie in [0, {MAX_NANOS:,}]"
    moment = stamp.seconds + stamp.nanos / 1e9
    if moment < earliest:
        return f"{name} is before {earliest_text}"
    if moment > now + MAX_FUTURE_SECONDS:
        return f"{name} is more than {MAX_FUTURE_SECONDS / 60:g} minutes in the future"
    return None
