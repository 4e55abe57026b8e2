"""The model input: journey features at a moment plus the arriving contact's context, one vector.

Training (each label's time, the contact recorded then) and serving (the moment of scoring, the
contact the request describes) both build their rows here, so the models see the same numbers in
both places. Columns follow MODEL_FEATURES; a missing value is NaN, LightGBM's missing.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.catalog import MODEL_FEATURES, REQUEST_FEATURE_NAMES
from features.domain import DAY, DEFAULT_EFFORT_HALF_LIFE_DAYS, VOICE
from features.events import ET, Event
from features.journey import compute_features, ivr_steps_before


@dataclass(frozen=True, slots=True)
class ContactContext:
    """What the routing system knows of the arriving contact."""

    channel: int = 0
    intent: str = ""
    queue_wait_seconds: float = 0.0
    ivr_steps_so_far: int = 0


def _repeats(events: Sequence[Event], intent: str, at: float) -> int | None:
    if not intent:
        return None
    # Up to and including `at`: the arriving contact, recorded before Score as the contract asks
    # and present at label_time in training, counts on both sides.
    return sum(1 for e in events if e.type == ET.EVENT_TYPE_CONTACT and e.intent == intent
               and at - 7 * DAY < e.occurred_at <= at)


def request_features(events: Sequence[Event], at: float,
                     contact: ContactContext | None) -> dict[str, Any]:
    """The 4 request features; None marks a missing value.

    Without a contact (a training row with no contact at its time) all are missing. Without a
    channel the request describes no arriving contact (an outreach batch, say), so wait and IVR
    steps are missing rather than zero, as in training rows without a contact.
    """
    if contact is None:
        return dict.fromkeys(REQUEST_FEATURE_NAMES)
    arriving = bool(contact.channel)
    return {
        "request_channel": contact.channel if arriving else None,
        "request_queue_wait_seconds": contact.queue_wait_seconds if arriving else None,
        "request_ivr_steps": contact.ivr_steps_so_far if arriving else None,
        "request_repeat_intent_7d": _repeats(events, contact.intent, at),
    }


def recorded_contact(events: Sequence[Event], at: float) -> ContactContext | None:
    """The context a request at `at` would have carried, read off the contact recorded then."""
    contact = max((e for e in events if e.type == ET.EVENT_TYPE_CONTACT and e.occurred_at == at),
                  key=lambda e: e.event_id, default=None)
    if contact is None:
        return None
    steps = len(ivr_steps_before(events, at)) if contact.channel == VOICE else 0
    return ContactContext(contact.channel, contact.intent, contact.wait_seconds or 0.0, steps)


def input_values(events: Sequence[Event], at: float, contact: ContactContext | None,
                 half_life_days: float = DEFAULT_EFFORT_HALF_LIFE_DAYS) -> dict[str, Any]:
    """Every model input by name at `at`: journey features recomputed from the events (so windows
    are right at that moment) and the request features; None marks a missing value.
    `half_life_days` is the model's (its manifest's effort_half_life_days)."""
    return compute_features(events, at, half_life_days) | request_features(events, at, contact)


def input_vector(events: Sequence[Event], at: float, contact: ContactContext | None,
                 out: np.ndarray | None = None,
                 half_life_days: float = DEFAULT_EFFORT_HALF_LIFE_DAYS) -> np.ndarray:
    """The model input at `at` in MODEL_FEATURES order, written into `out` when given."""
    values = input_values(events, at, contact, half_life_days)
    row = np.empty(len(MODEL_FEATURES), dtype=np.float64) if out is None else out
    for i, name in enumerate(MODEL_FEATURES):
        value = values[name]
        row[i] = math.nan if value is None else value
    return row
