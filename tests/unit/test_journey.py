"""The reference feature computation against hand-counted journeys."""

from features.catalog import FEATURE_NAMES
from features.domain import (
    COMPLAINT_ACKNOWLEDGED,
    COMPLAINT_NONE,
    COMPLAINT_RESOLVED,
    COMPLAINT_UNACKNOWLEDGED,
    DAY,
    HOUR,
)
from features.events import ET, Event
from features.journey import compute_features

NOW = 1_790_000_000.0
VOICE, CHAT, EMAIL, WEB = 1, 2, 3, 5


def ev(n: int, ago: float, kind: int, **details: object) -> Event:
    return Event(event_id=f"e{n}", customer_id="C1", occurred_at=NOW - ago, type=kind, **details)  # type: ignore[arg-type]


def test_windows_are_half_open_and_exclude_the_future() -> None:
    events = [
        ev(1, 8 * DAY, ET.EVENT_TYPE_CONTACT, channel=VOICE),  # 30d only
        ev(2, 7 * DAY, ET.EVENT_TYPE_CONTACT, channel=VOICE),  # exactly 7 days: outside (as_of-7d, as_of]
        ev(3, 2 * DAY, ET.EVENT_TYPE_CONTACT, channel=CHAT, intent="billing"),
        ev(4, 3 * HOUR, ET.EVENT_TYPE_CONTACT, channel=VOICE, intent="billing"),
        ev(5, 31 * DAY, ET.EVENT_TYPE_CONTACT, channel=EMAIL),  # outside every window
        ev(6, -HOUR, ET.EVENT_TYPE_CONTACT, channel=EMAIL),  # after as_of: ignored
    ]
    row = compute_features(events, NOW)
    assert (row["contacts_24h"], row["contacts_7d"], row["contacts_30d"]) == (1, 2, 4)
    assert row["distinct_channels_7d"] == 2 and row["channel_switches_7d"] == 1
    assert row["repeat_same_intent_7d"] == 1
    assert row["hours_since_last_contact"] == 3.0


def test_every_feature_is_computed() -> None:
    assert set(compute_features([], NOW)) == set(FEATURE_NAMES)


def test_transfers_waits_and_abandons() -> None:
    events = [
        ev(1, 2 * DAY, ET.EVENT_TYPE_CONTACT, channel=VOICE, wait_seconds=100.0),
        ev(2, 2 * DAY - 60, ET.EVENT_TYPE_TRANSFER),
        ev(3, HOUR, ET.EVENT_TYPE_ABANDON, wait_seconds=400.0),
        ev(4, 30 * 60, ET.EVENT_TYPE_CONTACT, channel=VOICE, wait_seconds=50.0),
        ev(5, 20 * 60, ET.EVENT_TYPE_TRANSFER),
        ev(6, 10 * 60, ET.EVENT_TYPE_TRANSFER),
    ]
    row = compute_features(events, NOW)
    assert row["transfers_7d"] == 3 and row["transfers_last"] == 2
    assert row["wait_seconds_avg_7d"] == 75.0 and row["wait_seconds_max_7d"] == 400.0
    assert row["abandoned_7d"] == 1


def test_unanswered_emails_match_oldest_first() -> None:
    events = [
        ev(1, 40 * DAY, ET.EVENT_TYPE_EMAIL_RECEIVED),
        ev(2, 10 * DAY, ET.EVENT_TYPE_EMAIL_RECEIVED),
        ev(3, 5 * DAY, ET.EVENT_TYPE_EMAIL_RECEIVED),
        ev(4, 4 * DAY, ET.EVENT_TYPE_EMAIL_ANSWERED),  # answers the 40-day-old one
    ]
    assert compute_features(events, NOW)["emails_unanswered_30d"] == 2


def test_complaint_lifecycle() -> None:
    opened = ev(1, 5 * DAY, ET.EVENT_TYPE_COMPLAINT_OPENED)
    acked = ev(2, 4 * DAY, ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED)
    resolved = ev(3, DAY, ET.EVENT_TYPE_COMPLAINT_RESOLVED)
    assert compute_features([], NOW)["complaint_state"] == COMPLAINT_NONE
    row = compute_features([opened], NOW)
    assert row["complaint_state"] == COMPLAINT_UNACKNOWLEDGED and row["complaint_age_days"] == 5.0
    assert compute_features([opened, acked], NOW)["complaint_state"] == COMPLAINT_ACKNOWLEDGED
    assert compute_features([resolved, acked, opened], NOW)["complaint_state"] == COMPLAINT_RESOLVED


def test_self_service_failure_needs_a_contact_within_the_hour() -> None:
    events = [
        ev(1, 3 * DAY, ET.EVENT_TYPE_SELF_SERVICE, channel=WEB),
        ev(2, 3 * DAY - 30 * 60, ET.EVENT_TYPE_CONTACT, channel=VOICE),  # 30 min later: failed
        ev(3, 2 * DAY, ET.EVENT_TYPE_SELF_SERVICE, channel=WEB),
        ev(4, 2 * DAY - 2 * HOUR, ET.EVENT_TYPE_CONTACT, channel=VOICE),  # 2 h later: not counted
    ]
    assert compute_features(events, NOW)["self_service_fail_7d"] == 1


def test_ivr_steps_retries_and_zero_outs() -> None:
    events = [
        ev(1, 700, ET.EVENT_TYPE_IVR_STEP, ivr_menu="main"),
        ev(2, 650, ET.EVENT_TYPE_IVR_STEP, ivr_menu="billing"),
        ev(3, 600, ET.EVENT_TYPE_IVR_STEP, ivr_menu="billing"),  # retry
        ev(4, 550, ET.EVENT_TYPE_IVR_ZERO_OUT),
        ev(5, 500, ET.EVENT_TYPE_CONTACT, channel=VOICE),
    ]
    row = compute_features(events, NOW)
    assert (row["ivr_steps_last"], row["ivr_retries_7d"], row["ivr_zero_out_7d"]) == (3, 1, 1)


def test_sentiment_relationship_and_notices() -> None:
    events = [
        ev(1, 100 * DAY, ET.EVENT_TYPE_PROFILE_UPDATE, customer_since=NOW - 400 * DAY,
           customer_value=1200.0),
        ev(2, 3 * DAY, ET.EVENT_TYPE_CONTACT, channel=CHAT, sentiment=-0.8),
        ev(3, 2 * DAY, ET.EVENT_TYPE_CONTACT, channel=CHAT, sentiment=0.2),
        ev(4, DAY, ET.EVENT_TYPE_PROACTIVE_NOTICE),
    ]
    row = compute_features(events, NOW)
    assert row["sentiment_last"] == 0.2 and row["negative_contacts_30d"] == 1
    assert row["tenure_days"] == 400.0 and row["customer_value"] == 1200.0
    assert row["proactive_notices_7d"] == 1
