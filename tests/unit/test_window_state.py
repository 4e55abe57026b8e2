"""Compaction keeps exactly what later features need: a property test against full history."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from features.events import Event
from features.journey import compute_features
from features.window_state import RETAINED_SPAN, compact, decode, encode
from tests.strategies import DAY, journeys

NOW = 1_790_000_000.0


@settings(max_examples=200, deadline=None)
@given(old=journeys(NOW, ("C1",), max_age_days=150, max_events=40),
       later=journeys(NOW + 20 * DAY, ("C1",), max_age_days=20, max_events=10),
       offsets=st.lists(st.floats(0, 60 * DAY), min_size=1, max_size=4))
def test_compacted_state_gives_the_full_history_features(
        old: list[Event], later: list[Event], offsets: list[float]) -> None:
    later = [e for e in later if e.occurred_at > NOW - RETAINED_SPAN]
    later = [replace(e, event_id="L" + e.event_id) for e in later]
    state = compact(old, NOW)
    assert len(state) <= len(old)
    for offset in offsets:
        t = NOW + offset
        assert compute_features(state + later, t) == compute_features(old + later, t)


@settings(max_examples=100, deadline=None)
@given(events=journeys(NOW, ("C1",)))
def test_encoding_round_trips(events: list[Event]) -> None:
    decoded = decode(encode(events), "C1")
    assert compute_features(decoded, NOW) == compute_features(events, NOW)
    assert [e.event_id for e in decoded] == [e.event_id for e in events]


def test_state_stays_bounded_for_a_noisy_customer() -> None:
    from features.events import ET

    events = [Event(f"e{i}", "C1", NOW - i * 600.0, ET.EVENT_TYPE_CONTACT, channel=1)
              for i in range(20_000)]  # a contact every 10 minutes for 139 days
    assert len(compact(events, NOW)) <= 1000 + 10 + 1000  # recent, anchors, 90-day window types
