"""Computes the journey feature row of one customer from their events, as of a moment.

Each feature's definition is in features/catalog.py; this is the reference computation that
ingestion, serving (at read time), training, the simulator and tests all use. Windows are
half-open: (as_of - span, as_of]. Events after `as_of` are ignored, so out-of-order arrival
cannot change a past row.

How each event type moves the features:
- CONTACT: contacts_24h/7d/30d, repeat_same_intent_7d (intent), distinct_channels_7d and
  channel_switches_7d (channel), wait_seconds_avg/max_7d (wait_seconds), negative_contacts_30d and
  sentiment_last (sentiment), hours_since_last_contact; a voice contact anchors ivr_steps_last; a
  contact within an hour after SELF_SERVICE makes it a self_service_fail_7d.
- TRANSFER: transfers_7d, and transfers_last when after the latest contact.
- IVR_STEP: ivr_steps_last (hour before the latest voice contact), ivr_retries_7d (same ivr_menu
  as the previous step within 10 minutes).
- IVR_ZERO_OUT: ivr_zero_out_7d.  ABANDON: abandoned_7d and wait_seconds_max_7d.
- EMAIL_RECEIVED / EMAIL_ANSWERED: emails_unanswered_30d (answers close the oldest open email).
- COMPLAINT_OPENED / _ACKNOWLEDGED / _RESOLVED: complaint_state, complaint_age_days.
- SELF_SERVICE: self_service_fail_7d (with a following contact).
- PROACTIVE_NOTICE: proactive_notices_7d.  PROFILE_UPDATE: tenure_days, customer_value.
- SURVEY: its CES answer feeds ces_mean_90d and low_ces_90d (the answers to past contacts; the
  label of a contact is its own survey, which arrives after it); its sentiment, if any, updates
  sentiment_last. Sentiment on other event types is ignored.
- The 60- and 90-day counts and effort_events_decayed read CONTACT, TRANSFER, ABANDON,
  IVR_ZERO_OUT and COMPLAINT_OPENED (LONG_WINDOW_TYPES). Effort events are transfers, abandons,
  IVR zero-outs, complaints opened, negative contacts and contacts that repeat one within 7 days;
  each counts 0.5 ** (age in days / half-life), the half-life chosen by training.
"""

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from features.domain import (
    COMPLAINT_ACKNOWLEDGED,
    COMPLAINT_NONE,
    COMPLAINT_RESOLVED,
    COMPLAINT_UNACKNOWLEDGED,
    DAY,
    DEFAULT_EFFORT_HALF_LIFE_DAYS,
    HOUR,
    IVR_LOOKBACK_SECONDS,
    IVR_RETRY_GAP_SECONDS,
    LONG_WINDOW_DAYS,
    LOW_CES,
    NEGATIVE_SENTIMENT,
    REPEAT_CONTACT_SECONDS,
    SELF_SERVICE_FAIL_SECONDS,
    VOICE,
)
from features.events import ET, Event

SENTIMENT_EVENT_TYPES = frozenset({ET.EVENT_TYPE_CONTACT, ET.EVENT_TYPE_SURVEY})
# What the windows longer than 30 days read; features/window_state.py keeps these that long.
LONG_WINDOW_TYPES = frozenset({ET.EVENT_TYPE_CONTACT, ET.EVENT_TYPE_TRANSFER,
                               ET.EVENT_TYPE_ABANDON, ET.EVENT_TYPE_IVR_ZERO_OUT,
                               ET.EVENT_TYPE_COMPLAINT_OPENED, ET.EVENT_TYPE_SURVEY})
_EFFORT_EVENT_TYPES = frozenset({ET.EVENT_TYPE_TRANSFER, ET.EVENT_TYPE_ABANDON,
                                 ET.EVENT_TYPE_IVR_ZERO_OUT, ET.EVENT_TYPE_COMPLAINT_OPENED})


def compute_features(events: Iterable[Event], as_of: float,
                     half_life_days: float = DEFAULT_EFFORT_HALF_LIFE_DAYS) -> dict[str, Any]:
    """The feature row for events known at `as_of` (epoch seconds); None marks missing values.
    `half_life_days` weighs effort_events_decayed (a model's choice, in its manifest)."""
    ordered = sorted((e for e in events if e.occurred_at <= as_of),
                     key=lambda e: (e.occurred_at, e.event_id))
    d1, d7, d30 = as_of - DAY, as_of - 7 * DAY, as_of - 30 * DAY
    d60, d90 = as_of - 60 * DAY, as_of - LONG_WINDOW_DAYS * DAY
    long_window = [e for e in ordered if e.occurred_at > d90]
    answers = [e.ces for e in long_window if e.type == ET.EVENT_TYPE_SURVEY and e.ces is not None]

    contacts = [e for e in ordered if e.type == ET.EVENT_TYPE_CONTACT]
    contacts_7d = [e for e in contacts if e.occurred_at > d7]
    intents = [e.intent for e in contacts_7d if e.intent]
    channels_7d = [e.channel for e in contacts_7d]
    waits = [e.wait_seconds for e in contacts_7d if e.wait_seconds is not None]
    abandons_7d = [e for e in ordered if e.type == ET.EVENT_TYPE_ABANDON and e.occurred_at > d7]
    all_waits = waits + [e.wait_seconds for e in abandons_7d if e.wait_seconds is not None]
    last_contact = contacts[-1] if contacts else None

    row: dict[str, Any] = {
        "contacts_24h": sum(1 for e in contacts if e.occurred_at > d1),
        "contacts_7d": len(contacts_7d),
        "contacts_30d": sum(1 for e in contacts if e.occurred_at > d30),
        "repeat_same_intent_7d": len(intents) - len(set(intents)),
        "distinct_channels_7d": len(set(channels_7d)),
        "channel_switches_7d": sum(1 for a, b in pairwise(channels_7d) if a != b),
        "self_service_fail_7d": _failed_self_service(ordered, contacts, d7),
        "ivr_steps_last": _ivr_steps_last(ordered, contacts),
        "ivr_retries_7d": _ivr_retries(ordered, d7),
        "ivr_zero_out_7d": _count(ordered, ET.EVENT_TYPE_IVR_ZERO_OUT, d7),
        "wait_seconds_avg_7d": sum(waits) / len(waits) if waits else None,
        "wait_seconds_max_7d": max(all_waits) if all_waits else None,
        "abandoned_7d": len(abandons_7d),
        "transfers_7d": _count(ordered, ET.EVENT_TYPE_TRANSFER, d7),
        "transfers_last": _count(ordered, ET.EVENT_TYPE_TRANSFER,
                                 last_contact.occurred_at - 1e-9 if last_contact else float("inf")),
        "emails_unanswered_30d": _unanswered_emails(ordered, d30),
        "negative_contacts_30d": sum(
            1 for e in contacts
            if e.occurred_at > d30 and e.sentiment is not None and e.sentiment < NEGATIVE_SENTIMENT
        ),
        "proactive_notices_7d": _count(ordered, ET.EVENT_TYPE_PROACTIVE_NOTICE, d7),
        "hours_since_last_contact": (as_of - last_contact.occurred_at) / HOUR
        if last_contact else None,
        "contacts_60d": sum(1 for e in contacts if e.occurred_at > d60),
        "contacts_90d": sum(1 for e in contacts if e.occurred_at > d90),
        "transfers_90d": _count(long_window, ET.EVENT_TYPE_TRANSFER, d90),
        "abandoned_90d": _count(long_window, ET.EVENT_TYPE_ABANDON, d90),
        "complaints_90d": _count(long_window, ET.EVENT_TYPE_COMPLAINT_OPENED, d90),
        "negative_contacts_90d": sum(
            1 for e in long_window if e.type == ET.EVENT_TYPE_CONTACT
            and e.sentiment is not None and e.sentiment < NEGATIVE_SENTIMENT),
        "ces_mean_90d": sum(answers) / len(answers) if answers else None,
        "low_ces_90d": sum(1 for answer in answers if answer <= LOW_CES),
        "effort_events_decayed": decay_weighted(_effort_times(long_window), as_of, half_life_days),
    }
    row["sentiment_last"] = next((e.sentiment for e in reversed(ordered) if e.sentiment is not None
                                  and e.type in SENTIMENT_EVENT_TYPES), None)
    row["complaint_state"], row["complaint_age_days"] = _complaint(ordered, as_of)
    row["tenure_days"], row["customer_value"] = _relationship(ordered, as_of)
    return row


def effort_event_times(events: Iterable[Event], as_of: float) -> list[float]:
    """When the effort events of the 90 days up to `as_of` happened (module docstring)."""
    since = as_of - LONG_WINDOW_DAYS * DAY
    return _effort_times(sorted((e for e in events if since < e.occurred_at <= as_of),
                                key=lambda e: (e.occurred_at, e.event_id)))


def _effort_times(window: list[Event]) -> list[float]:
    """effort_event_times of a 90-day window's events already in time order."""
    times, previous_contact = [], None
    for e in window:
        if e.type in _EFFORT_EVENT_TYPES:
            times.append(e.occurred_at)
        elif e.type == ET.EVENT_TYPE_CONTACT:
            repeat = (previous_contact is not None
                      and e.occurred_at - previous_contact <= REPEAT_CONTACT_SECONDS)
            if repeat or (e.sentiment is not None and e.sentiment < NEGATIVE_SENTIMENT):
                times.append(e.occurred_at)
            previous_contact = e.occurred_at
    return times


def decay_weighted(times: Iterable[float], as_of: float, half_life_days: float) -> float:
    """Sum of 0.5 ** (age in days / half-life) over the times."""
    return float(sum(0.5 ** ((as_of - t) / DAY / half_life_days) for t in times))


def _count(ordered: list[Event], event_type: int, after: float) -> int:
    return sum(1 for e in ordered if e.type == event_type and e.occurred_at > after)


def _failed_self_service(ordered: list[Event], contacts: list[Event], after: float) -> int:
    attempts = [e.occurred_at for e in ordered if e.type == ET.EVENT_TYPE_SELF_SERVICE
                and e.occurred_at > after]
    contact_times = [c.occurred_at for c in contacts]
    return sum(1 for t in attempts
               if any(t < c <= t + SELF_SERVICE_FAIL_SECONDS for c in contact_times))


def ivr_steps_before(events: Iterable[Event], contact_at: float) -> list[Event]:
    """The IVR steps that belong to a voice contact at `contact_at`: those in the hour up to it."""
    return [e for e in events if e.type == ET.EVENT_TYPE_IVR_STEP
            and contact_at - IVR_LOOKBACK_SECONDS <= e.occurred_at <= contact_at]


def _ivr_steps_last(ordered: list[Event], contacts: list[Event]) -> int:
    voice = [c for c in contacts if c.channel == VOICE]
    return len(ivr_steps_before(ordered, voice[-1].occurred_at)) if voice else 0


def _ivr_retries(ordered: list[Event], after: float) -> int:
    retries, previous = 0, None
    for e in ordered:
        if e.type != ET.EVENT_TYPE_IVR_STEP:
            continue
        if (previous is not None and e.occurred_at > after and e.ivr_menu
                and e.ivr_menu == previous.ivr_menu
                and e.occurred_at - previous.occurred_at <= IVR_RETRY_GAP_SECONDS):
            retries += 1
        previous = e
    return retries


def open_emails(ordered: Iterable[Event]) -> list[Event]:
    """Received emails with no answer yet, oldest first; each answer closes the oldest open one."""
    still_open: list[Event] = []
    for e in ordered:
        if e.type == ET.EVENT_TYPE_EMAIL_RECEIVED:
            still_open.append(e)
        elif e.type == ET.EVENT_TYPE_EMAIL_ANSWERED and still_open:
            still_open.pop(0)
    return still_open


def _unanswered_emails(ordered: list[Event], after: float) -> int:
    return sum(1 for e in open_emails(ordered) if e.occurred_at > after)


def _complaint(ordered: list[Event], as_of: float) -> tuple[int, float | None]:
    state, opened_at = COMPLAINT_NONE, None
    for e in ordered:
        if e.type == ET.EVENT_TYPE_COMPLAINT_OPENED:
            state, opened_at = COMPLAINT_UNACKNOWLEDGED, e.occurred_at
        elif e.type == ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED and state == COMPLAINT_UNACKNOWLEDGED:
            state = COMPLAINT_ACKNOWLEDGED
        elif e.type == ET.EVENT_TYPE_COMPLAINT_RESOLVED and state in (
                COMPLAINT_UNACKNOWLEDGED, COMPLAINT_ACKNOWLEDGED):
            state = COMPLAINT_RESOLVED
    age = (as_of - opened_at) / DAY if opened_at is not None else None
    return state, age


def _relationship(ordered: list[Event], as_of: float) -> tuple[float | None, float | None]:
    tenure, value = None, None
    for e in ordered:
        if e.type == ET.EVENT_TYPE_PROFILE_UPDATE:
            if e.customer_since is not None:
                tenure = max(0.0, (as_of - e.customer_since) / DAY)
            if e.customer_value is not None:
                value = e.customer_value
    return tenure, value
