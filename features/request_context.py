"""Request-time context features: the arriving contact, from the request or from its event."""

import math
from collections.abc import Sequence
from typing import Any

from features.events import ET, Event
from features.journey import DAY, HOUR, VOICE


def _repeats(events: Sequence[Event], intent: str, at: float) -> int | None:
    if not intent:
        return None
    return sum(1 for e in events if e.type == ET.EVENT_TYPE_CONTACT and e.intent == intent
               and at - 7 * DAY < e.occurred_at < at)


def from_request(events: Sequence[Event], at: float, channel: int, intent: str,
                 queue_wait_seconds: float, ivr_steps_so_far: int) -> dict[str, Any]:
    """Context of a ScoreRequest at `at`; `events` are the customer's window-state events.

    Without a channel the request describes no arriving contact (an outreach batch, say), so
    wait and IVR steps are missing rather than zero, as in training rows without a contact.
    """
    contact = bool(channel)
    return {
        "request_channel": channel if contact else None,
        "request_queue_wait_seconds": queue_wait_seconds if contact else None,
        "request_ivr_steps": ivr_steps_so_far if contact else None,
        "request_repeat_intent_7d": _repeats(events, intent, at),
    }


def from_recorded_contact(events: Sequence[Event], at: float) -> dict[str, Any]:
    """Context as a request at `at` would have carried it, read off the contact recorded then.

    Used to build training rows: all missing when no contact was recorded at exactly `at`.
    """
    contact = max((e for e in events if e.type == ET.EVENT_TYPE_CONTACT and e.occurred_at == at),
                  key=lambda e: e.event_id, default=None)
    if contact is None:
        return dict.fromkeys(("request_channel", "request_queue_wait_seconds",
                              "request_ivr_steps", "request_repeat_intent_7d"), math.nan)
    steps = (sum(1 for e in events if e.type == ET.EVENT_TYPE_IVR_STEP
                 and at - HOUR <= e.occurred_at <= at) if contact.channel == VOICE else 0)
    return from_request(events, at, contact.channel, contact.intent,
                        contact.wait_seconds or 0.0, steps)
