"""The plain baseline's inputs: raw event counts per type and window, checked by hand."""

import numpy as np

from features.domain import DAY, HOUR
from features.events import ET, KNOWN_EVENT_TYPES, Event
from training.baselines import COUNT_WINDOWS_DAYS, raw_event_counts

NOW = 1_790_000_000.0


def _column(event_type: int, days: int) -> int:
    return sorted(KNOWN_EVENT_TYPES).index(event_type) * len(COUNT_WINDOWS_DAYS) + \
        COUNT_WINDOWS_DAYS.index(days)


def test_counts_each_type_in_each_window_up_to_the_moment() -> None:
    events = [
        Event("a", "C1", NOW - 2 * HOUR, ET.EVENT_TYPE_CONTACT),
        Event("a", "C1", NOW - 2 * HOUR, ET.EVENT_TYPE_CONTACT),  # duplicate id: once
        Event("b", "C1", NOW - 3 * DAY, ET.EVENT_TYPE_CONTACT),
        Event("c", "C1", NOW - 7 * DAY, ET.EVENT_TYPE_CONTACT),  # exactly 7 days: outside 7d
        Event("d", "C1", NOW - 45 * DAY, ET.EVENT_TYPE_CONTACT),
        Event("e", "C1", NOW + HOUR, ET.EVENT_TYPE_CONTACT),  # after the moment: ignored
        Event("f", "C1", NOW - 10 * DAY, ET.EVENT_TYPE_TRANSFER),
        Event("g", "C2", NOW - HOUR, ET.EVENT_TYPE_CONTACT),  # another customer
    ]
    counts = raw_event_counts(events, ["C1", "C1", "C3"], np.array([NOW, NOW - 5 * DAY, NOW]))
    contact = [counts[0, _column(ET.EVENT_TYPE_CONTACT, d)] for d in COUNT_WINDOWS_DAYS]
    assert contact == [1, 2, 3, 4]
    assert [counts[0, _column(ET.EVENT_TYPE_TRANSFER, d)] for d in COUNT_WINDOWS_DAYS] == [0, 0, 1, 1]
    # Five days earlier: the contacts 2 hours and 3 days before NOW had not happened yet; the
    # 7-day-old one was 2 days old, the 45-day-old one 40.
    assert [counts[1, _column(ET.EVENT_TYPE_CONTACT, d)] for d in COUNT_WINDOWS_DAYS] == [0, 1, 1, 2]
    assert [counts[1, _column(ET.EVENT_TYPE_TRANSFER, d)] for d in COUNT_WINDOWS_DAYS] == [0, 1, 1, 1]
    assert counts[2].sum() == 0  # a customer with no events
    assert counts.sum() == (1 + 2 + 3 + 4) + (0 + 0 + 1 + 1) + (0 + 1 + 1 + 2) + (0 + 1 + 1 + 1)
