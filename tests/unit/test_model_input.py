"""One model input for training and serving: the same events, moment and contact give the same row."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import FEATURE_NAMES, MODEL_FEATURES, REQUEST_FEATURE_NAMES
from features.domain import DAY, HOUR, VOICE
from features.events import ET, Event
from features.journey import compute_features
from features.model_input import ContactContext, input_vector, recorded_contact
from service.scorer import ScoreInput
from tests.strategies import journeys

NOW = 1_790_000_000.0


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_journey_columns_are_the_reference_features_at_the_moment(data: st.DataObject) -> None:
    events = data.draw(journeys(NOW, ("C1",)))
    at = NOW + data.draw(st.floats(0, 10 * DAY))
    row = input_vector(events, at, None)
    reference = compute_features(events, at)
    for i, name in enumerate(FEATURE_NAMES):
        expected = reference[name]
        assert (math.isnan(row[i]) if expected is None else row[i] == expected), name
    assert np.isnan(row[len(FEATURE_NAMES):]).all()  # no contact: request features missing


def test_a_training_row_equals_the_serving_row_of_the_same_contact() -> None:
    at = NOW
    events = [
        Event("s1", "C1", at - 2 * DAY, ET.EVENT_TYPE_CONTACT, channel=VOICE, intent="billing"),
        Event("s2", "C1", at - 50 * 60, ET.EVENT_TYPE_IVR_STEP, ivr_menu="main"),
        Event("s3", "C1", at - 20 * 60, ET.EVENT_TYPE_IVR_STEP, ivr_menu="billing"),
        Event("s4", "C1", at - 2 * HOUR, ET.EVENT_TYPE_IVR_STEP, ivr_menu="main"),  # too early
        Event("s5", "C1", at, ET.EVENT_TYPE_CONTACT, channel=VOICE, intent="billing",
              wait_seconds=42.0),
    ]
    contact = recorded_contact(events, at)
    assert contact == ContactContext(VOICE, "billing", 42.0, 2)
    training_row = input_vector(events, at, contact)
    # The routing system records the contact, then describes it in its request; Score runs a
    # moment later.
    request = ScoreInput("C1", channel=VOICE, intent="billing", queue_wait_seconds=42.0,
                         ivr_steps_so_far=2)
    serving_row = input_vector(events, at + 0.05, request.contact)
    journey = len(FEATURE_NAMES)
    np.testing.assert_array_equal(training_row[journey:], serving_row[journey:])
    values = dict(zip(MODEL_FEATURES, serving_row, strict=True))
    assert values["request_repeat_intent_7d"] == 2  # the contact 2 days earlier, and itself
    assert values["request_ivr_steps"] == 2 and values["request_queue_wait_seconds"] == 42.0


def test_a_request_without_a_channel_has_no_wait_or_ivr_steps() -> None:
    events = [Event("a1", "C1", NOW - DAY, ET.EVENT_TYPE_CONTACT, channel=2, intent="order")]
    row = dict(zip(MODEL_FEATURES, input_vector(events, NOW, ContactContext(0, "order", 30.0, 3)),
                   strict=True))
    assert all(math.isnan(row[name]) for name in REQUEST_FEATURE_NAMES[:3])
    assert row["request_repeat_intent_7d"] == 1
    assert dict(zip(MODEL_FEATURES, input_vector(events, NOW - DAY, ContactContext(2, "order")),
                    strict=True))["request_repeat_intent_7d"] == 1  # at its own moment: itself
