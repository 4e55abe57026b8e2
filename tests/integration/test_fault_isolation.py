"""One customer's unusable stored data degrades that customer's answer only, never the call."""

import time
from pathlib import Path

from feast import FeatureStore
from feast.data_source import PushMode

from features.catalog import MODEL_FEATURES, PUSH_SOURCE_NAME, WINDOW_STATE_FIELD
from features.domain import DAY
from features.events import ET, Event
from features.recorder import JourneyRecorder
from features.rows import feature_record, rows_frame
from features.state import open_state
from features.store import apply_definitions, open_store
from service.feature_reader import FeastFeatureReader
from service.models import load_bundle
from service.scorer import ScoreInput, Scorer
from tests.helpers import DemoWorld
from training.registry import current_folder


def _new_store(tmp_path: Path) -> tuple[FeatureStore, JourneyRecorder]:
    """An empty SQLite Feast store under tmp_path and a recorder writing to it."""
    repo = tmp_path / "repo"
    store = open_store(repo)
    apply_definitions(store)
    return store, JourneyRecorder(store, open_state("sqlite", repo, ""))


def test_a_customer_with_a_non_finite_stored_value_is_degraded_alone(
        demo_world: DemoWorld, tmp_path: Path) -> None:
    store, recorder = _new_store(tmp_path)
    now = time.time()
    # Stored before the edge checked values (record_parsed takes already-parsed events).
    outcome = recorder.record_parsed([
        Event("g1", "CGOOD", now - 3600, ET.EVENT_TYPE_CONTACT, channel=1, intent="billing"),
        Event("b1", "CBAD", now - 3600, ET.EVENT_TYPE_PROFILE_UPDATE,
              customer_value=float("inf"), customer_since=now - 400 * DAY),
        Event("b2", "CBAD", now - 1800, ET.EVENT_TYPE_CONTACT, channel=2, intent="order"),
    ], now=now)
    assert outcome.accepted == 3
    bundle = load_bundle(current_folder(demo_world.models_dir), MODEL_FEATURES)
    scorer = Scorer(FeastFeatureReader(store), bundle)
    good, bad, good_again = scorer.score_many(
        [ScoreInput("CGOOD"), ScoreInput("CBAD"), ScoreInput("CGOOD", channel=1)])
    assert good.customer_known and not good.degraded_reason
    assert good_again.customer_known and not good_again.degraded_reason
    assert bad.degraded_reason == "customer's stored data unusable: a stored value is not finite"
    assert bad.churn_risk == bundle.prior_churn_risk and not bad.senior


def test_a_customer_whose_stored_journey_does_not_decode_is_degraded_alone(
        demo_world: DemoWorld, tmp_path: Path) -> None:
    store, recorder = _new_store(tmp_path)
    now = time.time()
    recorder.record_parsed([Event("g1", "CGOOD", now - 3600, ET.EVENT_TYPE_CONTACT, channel=1)],
                           now=now)
    garbled = rows_frame([feature_record("CGARBLED", [], now)])
    garbled[WINDOW_STATE_FIELD] = "\x00 not a window state"
    store.push(PUSH_SOURCE_NAME, garbled, to=PushMode.ONLINE)
    scorer = Scorer(FeastFeatureReader(store),
                    load_bundle(current_folder(demo_world.models_dir), MODEL_FEATURES))
    good, bad = scorer.score_many([ScoreInput("CGOOD"), ScoreInput("CGARBLED")])
    assert good.customer_known and not good.degraded_reason
    assert bad.degraded_reason.startswith("customer's stored data unusable: ")
    assert "while decoding its stored journey" in bad.degraded_reason
