"""Exactly-once aggregation into Feast, on SQLite and on a real Redis: property tests."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import redis
from feast import FeatureStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalog import FEATURE_NAMES, FEATURE_SERVICE_NAME, WINDOW_STATE_FIELD
from features.events import Event
from features.journey import compute_features
from features.recorder import JourneyRecorder
from features.state import RedisJourneyState, SqliteJourneyState, state_path
from features.store import apply_definitions, open_store
from features.window_state import RETAINED_SPAN, decode
from service.feature_reader import FeastFeatureReader
from tests.strategies import DAY, journeys

NOW = float(int(time.time()))


@dataclass
class Pipeline:
    """A recorder writing to a real Feast store and a reader of the same store."""

    recorder: JourneyRecorder
    reader: FeastFeatureReader
    repo: Path
    store: FeatureStore


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def pipeline(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    repo = tmp_path_factory.mktemp(f"agg-{request.param}")
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        store = open_store(repo, "redis", url)
        state: SqliteJourneyState | RedisJourneyState = RedisJourneyState(
            redis.Redis.from_url(url), prefix=f"agg{uuid.uuid4().hex[:6]}")
    else:
        store = open_store(repo)
        state = SqliteJourneyState(state_path(repo))
    apply_definitions(store)
    yield Pipeline(JourneyRecorder(store, state, clock=lambda: NOW), FeastFeatureReader(store), repo,
                   store)
    state.close()


def _split(stream: list[Event], cuts: list[int]) -> list[list[Event]]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds) if b > a]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_with_duplicates_gives_the_reference_features(pipeline: Pipeline,
                                                                data: st.DataObject) -> None:
    tag = uuid.uuid4().hex[:8]
    customers = (f"P{tag}a", f"P{tag}b")
    # Exact for events inside the retention span; older late events are covered in the docs.
    events = data.draw(journeys(NOW, customers, max_age_days=RETAINED_SPAN / DAY - 0.5))
    resent = data.draw(st.lists(st.sampled_from(events), max_size=8))
    stream = data.draw(st.permutations(events + resent))
    batches = _split(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    accepted = duplicates = 0
    for batch in batches:
        outcome = pipeline.recorder.record_parsed(batch)
        accepted, duplicates = accepted + outcome.accepted, duplicates + outcome.duplicates
    assert (accepted, duplicates) == (len(events), len(resent))
    for customer_id, row in zip(customers, pipeline.reader.read(customers), strict=True):
        own = [e for e in events if e.customer_id == customer_id]
        if not own:
            assert row is None
            continue
        assert row is not None
        for later in (0.0, 2 * DAY, 8 * DAY, 31 * DAY):  # windows slide with no new events
            assert compute_features(row.events, NOW + later) == compute_features(own, NOW + later)


def test_replaying_a_batch_changes_nothing(pipeline: Pipeline) -> None:
    from features.events import ET

    customer = f"R{uuid.uuid4().hex[:8]}"
    events = [Event(f"{customer}-{i}", customer, NOW - i * 3600.0, ET.EVENT_TYPE_CONTACT,
                    channel=1 + i % 3) for i in range(5)]
    first = pipeline.recorder.record_parsed(events)
    before = pipeline.reader.read([customer])[0]
    again = pipeline.recorder.record_parsed(list(reversed(events)))
    after = pipeline.reader.read([customer])[0]
    assert (first.accepted, again.accepted, again.duplicates) == (5, 0, 5)
    assert before is not None and after is not None
    assert compute_features(after.events, NOW) == compute_features(before.events, NOW)
    assert compute_features(after.events, NOW)["contacts_7d"] == 5


def test_an_eight_day_old_contact_leaves_the_7_day_window(pipeline: Pipeline) -> None:
    from features.events import ET

    customer = f"W{uuid.uuid4().hex[:8]}"
    pipeline.recorder.record_parsed([Event(f"{customer}-1", customer, NOW - 6.5 * DAY,
                                           ET.EVENT_TYPE_CONTACT, channel=2)])
    row = pipeline.reader.read([customer])[0]
    assert row is not None
    assert compute_features(row.events, NOW)["contacts_7d"] == 1
    later = compute_features(row.events, NOW + 1.5 * DAY)  # 8 days after the contact, nothing new
    assert later["contacts_7d"] == 0 and later["contacts_30d"] == 1


def test_reader_reads_what_feast_get_online_features_returns(pipeline: Pipeline) -> None:
    from features.events import ET

    customers = [f"V{uuid.uuid4().hex[:8]}" for _ in range(3)]
    events = [Event(f"{c}-{i}", c, NOW - i * 5000.0, kind, channel=1 + i % 3,
                    wait_seconds=None if i % 2 else 12.5, sentiment=-0.4 if i == 1 else None)
              for c in customers[:2]
              for i, kind in enumerate([ET.EVENT_TYPE_CONTACT, ET.EVENT_TYPE_TRANSFER,
                                        ET.EVENT_TYPE_CONTACT, ET.EVENT_TYPE_COMPLAINT_OPENED])]
    pipeline.recorder.record_parsed(events)
    store = pipeline.store
    reader = FeastFeatureReader(store)
    reader.read(customers)
    # Read twice: Feast's Redis store appends to the feature list it is given, which once made
    # every later read slower.
    serving = reader.read(customers)
    # Feast's documented path, with every stored feature of the row.
    feast = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE_NAME),
        entity_rows=[{"customer_id": c} for c in customers]).to_dict(include_event_timestamps=True)
    assert serving[2] is None and feast[WINDOW_STATE_FIELD][2] is None  # never recorded
    for i, row in enumerate(serving[:2]):
        assert row is not None
        stored = {name: feast[name][i] for name in FEATURE_NAMES}
        # What serving reads: the window state alone, from which every stored feature is recomputed.
        assert row.events == decode(feast[WINDOW_STATE_FIELD][i], customers[i])
        assert compute_features(row.events, row.computed_at) == stored
        assert abs(row.computed_at - float(feast[f"{WINDOW_STATE_FIELD}__ts"][i])) < 1.0
        assert stored["wait_seconds_avg_7d"] == 12.5 and stored["contacts_7d"] == 2
