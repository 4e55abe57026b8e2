"""Bulk ingestion: journey events to feature-row history (offline) and latest rows (online)."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from feast import FeatureStore

from features.catalog import FEATURE_VIEW_NAME, JOIN_KEY
from features.definitions import TIMESTAMP_FIELD
from features.events import Event
from features.journey import compute_features
from features.rows import history_path, rows_frame
from features.state import EventLog
from features.store import apply_definitions


def feature_rows(events: Iterable[Event],
                 progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """One row per customer and distinct event time: the features as of that moment.

    This is the history that pushing every event in time order would leave in the offline store;
    events sharing a timestamp yield one row, the state after all of them.
    """
    by_customer: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_customer[event.customer_id].append(event)
    records: list[dict[str, object]] = []
    for customer_id, history in by_customer.items():
        history.sort(key=lambda e: (e.occurred_at, e.event_id))
        times = [e.occurred_at for e in history]
        for i, t in enumerate(times):
            if i + 1 < len(times) and times[i + 1] == t:
                continue  # a later event shares this moment: its row covers both
            row = compute_features(history[: i + 1], t)
            row[JOIN_KEY] = customer_id
            row[TIMESTAMP_FIELD] = t
            records.append(row)
        if progress:
            progress(len(history))
    return rows_frame(records)


def write_history(store: FeatureStore, frame: pd.DataFrame) -> Path:
    """Replaces the offline Parquet history with `frame`, sorted by time."""
    path = history_path(Path(store.repo_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.sort_values([TIMESTAMP_FIELD, JOIN_KEY]).to_parquet(path, index=False)
    return path


def materialize_latest(store: FeatureStore, frame: pd.DataFrame) -> None:
    """Loads each customer's latest row from the offline history into the online store."""
    if frame.empty:
        return
    start = frame[TIMESTAMP_FIELD].min().to_pydatetime() - timedelta(seconds=1)
    end = max(datetime.now(UTC), frame[TIMESTAMP_FIELD].max().to_pydatetime()) + timedelta(
        seconds=1)
    store.materialize(start_date=start, end_date=end, feature_views=[FEATURE_VIEW_NAME])


def rebuild(store: FeatureStore, log: EventLog,
            progress: Callable[[int], None] | None = None) -> int:
    """Recomputes the offline history from every logged event, applies, and materializes."""
    frame = feature_rows(log.all_events(), progress)
    write_history(store, frame)
    apply_definitions(store)
    materialize_latest(store, frame)
    return len(frame)
