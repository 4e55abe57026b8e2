"""Hypothesis strategies for journey event streams."""

from dataclasses import replace

from hypothesis import strategies as st

from features.events import ET, Event

DAY = 86400.0
TYPES = [ET.EVENT_TYPE_CONTACT] * 4 + [
    ET.EVENT_TYPE_TRANSFER, ET.EVENT_TYPE_IVR_STEP, ET.EVENT_TYPE_IVR_ZERO_OUT,
    ET.EVENT_TYPE_ABANDON, ET.EVENT_TYPE_EMAIL_RECEIVED, ET.EVENT_TYPE_EMAIL_ANSWERED,
    ET.EVENT_TYPE_COMPLAINT_OPENED, ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED,
    ET.EVENT_TYPE_COMPLAINT_RESOLVED, ET.EVENT_TYPE_SELF_SERVICE, ET.EVENT_TYPE_PROACTIVE_NOTICE,
    ET.EVENT_TYPE_SURVEY, ET.EVENT_TYPE_PROFILE_UPDATE]


@st.composite
def journeys(draw: st.DrawFn, now: float, customers: tuple[str, ...], max_age_days: float = 40.0,
             max_events: int = 30) -> list[Event]:
    """Distinct events of a few customers over the last `max_age_days`, with same-second ties."""
    moments = draw(st.lists(st.floats(0, max_age_days * DAY), min_size=1, max_size=8))
    count = draw(st.integers(1, max_events))
    events = []
    for n in range(count):
        kind = draw(st.sampled_from(TYPES))
        ago = draw(st.one_of(st.sampled_from(moments), st.floats(0, max_age_days * DAY)))
        profile = kind == ET.EVENT_TYPE_PROFILE_UPDATE
        events.append(Event(
            event_id=f"{draw(st.sampled_from(customers))}-{n}",
            customer_id="",  # set below from the id, so ids stay unique per customer
            occurred_at=round(now - ago, 3),
            type=kind,
            channel=draw(st.integers(0, 7)),
            intent=draw(st.sampled_from(["", "billing", "tech"])),
            wait_seconds=draw(st.none() | st.floats(0, 900).map(lambda w: round(w, 1))),
            sentiment=draw(st.none() | st.floats(-1, 1).map(lambda s: round(s, 2))),
            ces=draw(st.integers(1, 7)) if kind == ET.EVENT_TYPE_SURVEY else None,
            ivr_menu=draw(st.sampled_from(["", "main", "billing"])),
            customer_since=now - draw(st.floats(0, 4000)) * DAY if profile else None,
            customer_value=draw(st.floats(0, 5000)) if profile else None,
        ))
    return [replace(e, customer_id=e.event_id.rsplit("-", 1)[0]) for e in events]
