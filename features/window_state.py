"""Per-customer window state: the few events that still matter, compacted and serialised.

Serving recomputes the features from this state at the moment of scoring, so windows are right
at read time (an 8-day-old contact leaves contacts_7d even when nothing happened since), and
training recomputes them the same way at each label's time.

`compact(events, now)` keeps a subset S such that, for every t >= now and any events E2 dated
after now - RETAINED_SPAN (or after the customer's newest event minus RETAINED_SPAN, if older),
compute_features(S + E2, t) == compute_features(events + E2, t). So arrival order does not matter
within that span, and a history replayed in time order is exact. It keeps:
- every event of the RETAINED_SPAN (the longest window, 30 days, plus slack) before the
  customer's newest event (or before now, if that is earlier), and one hour more;
- the latest contact and the transfers after it; the latest voice contact and its IVR steps;
- the latest contact or survey carrying a sentiment; the latest profile values;
- the latest complaint opened and what followed it;
- emails still open at the cut, which later answers close first (oldest first);
- before that, back to LONG_SPAN (the 90-day windows plus slack), only the event types the long
  windows read (journey.LONG_WINDOW_TYPES: contacts, transfers, abandons, IVR zero-outs,
  complaints opened, surveys).
At most MAX_WINDOW_EVENTS recent events and MAX_LONG_EVENTS older ones are kept, so a customer's
state stays bounded; only a customer beyond those bounds loses exactness, oldest events first.
"""

import json
from collections.abc import Iterable

from features.domain import (
    DAY,
    IVR_LOOKBACK_SECONDS,
    LONG_WINDOW_DAYS,
    SELF_SERVICE_FAIL_SECONDS,
    VOICE,
)
from features.events import ET, Event
from features.journey import (
    LONG_WINDOW_TYPES,
    SENTIMENT_EVENT_TYPES,
    ivr_steps_before,
    open_emails,
)

RETAINED_SPAN = 31 * DAY
LONG_SPAN = (LONG_WINDOW_DAYS + 1) * DAY
MAX_LONG_EVENTS = 1000
# Features that look back from a recent event (IVR steps, failed self-service) reach this far.
LOOK_BACK = max(IVR_LOOKBACK_SECONDS, SELF_SERVICE_FAIL_SECONDS)
MAX_WINDOW_EVENTS = 1000
MAX_OPEN_EMAILS = 100

# Compact column order of a serialised event.
_FIELDS = ("event_id", "occurred_at", "type", "channel", "intent", "wait_seconds", "sentiment",
           "ces", "ivr_menu", "customer_since", "customer_value")


def _order(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.occurred_at, e.event_id))


def compact(events: Iterable[Event], now: float) -> list[Event]:
    """The events that can still change a feature at `now` or later, in time order."""
    ordered = _order(events)
    if not ordered:
        return []
    # Cut relative to the customer's newest event, so that a history replayed in time order is
    # exact however old it is; LOOK_BACK covers the IVR and self-service look-backs.
    newest = min(now, ordered[-1].occurred_at)
    cut = newest - RETAINED_SPAN - LOOK_BACK
    long_cut = newest - LONG_SPAN - LOOK_BACK
    old = [e for e in ordered if e.occurred_at <= cut]
    recent = [e for e in ordered if e.occurred_at > cut][-MAX_WINDOW_EVENTS:]
    if not old:
        return recent
    keep: dict[str, Event] = {}

    def hold(*kept: Event | None) -> None:
        for event in kept:
            if event is not None:
                keep[event.event_id] = event

    # Anchors of the "latest ..." features, looked up over all events.
    contacts = [e for e in ordered if e.type == ET.EVENT_TYPE_CONTACT]
    if contacts:
        last = contacts[-1]
        hold(last, *(e for e in old if e.type == ET.EVENT_TYPE_TRANSFER
                     and e.occurred_at >= last.occurred_at))
    voice = [c for c in contacts if c.channel == VOICE]
    if voice:
        hold(voice[-1], *ivr_steps_before(old, voice[-1].occurred_at))
    hold(next((e for e in reversed(old) if e.sentiment is not None
               and e.type in SENTIMENT_EVENT_TYPES), None))
    hold(next((e for e in reversed(old) if e.type == ET.EVENT_TYPE_PROFILE_UPDATE
               and e.customer_since is not None), None))
    hold(next((e for e in reversed(old) if e.type == ET.EVENT_TYPE_PROFILE_UPDATE
               and e.customer_value is not None), None))
    opened = [i for i, e in enumerate(old) if e.type == ET.EVENT_TYPE_COMPLAINT_OPENED]
    if opened:
        hold(*(e for e in old[opened[-1]:] if e.type in (
            ET.EVENT_TYPE_COMPLAINT_OPENED, ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED,
            ET.EVENT_TYPE_COMPLAINT_RESOLVED)))
    hold(*open_emails(old)[-MAX_OPEN_EMAILS:])
    # The last IVR step before the cut still decides whether the first recent step is a retry.
    hold(next((e for e in reversed(old) if e.type == ET.EVENT_TYPE_IVR_STEP), None))
    hold(*[e for e in old if e.occurred_at > long_cut and e.type in LONG_WINDOW_TYPES]
         [-MAX_LONG_EVENTS:])
    keep.update((e.event_id, e) for e in recent)
    return _order(keep.values())


def encode(events: Iterable[Event]) -> str:
    """Compact JSON of the state's events (what the online and offline stores hold)."""
    return json.dumps([[getattr(e, name) for name in _FIELDS] for e in events],
                      separators=(",", ":"))


def decode(state: str | None, customer_id: str) -> list[Event]:
    """The events of an encoded state; an empty or missing state has none."""
    if not state:
        return []
    # Positional construction (fields in Event's order) is the hot path's cheapest way in.
    return [Event(event_id, customer_id, occurred_at, kind, channel, intent, wait, sentiment,
                  None, ces, ivr_menu, "", since, value)
            for event_id, occurred_at, kind, channel, intent, wait, sentiment, ces, ivr_menu, since,
            value in json.loads(state)]
