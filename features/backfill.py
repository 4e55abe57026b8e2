"""Bulk history: the offline rows that pushing every event in time order would have left."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from feast import FeatureStore

from features.batches import chunked
from features.events import Event
from features.recorder import JourneyRecorder
from features.rows import feature_record, replace_backfill, rows_frame
from features.store import apply_definitions
from features.window_state import compact


def feature_rows(events: Iterable[Event],
                 progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """One row per customer and distinct event time, with the window state as of that moment.

    Duplicated event_ids count once; events sharing a timestamp yield one row, the state after
    all of them.
    """
    by_customer: dict[str, list[Event]] = defaultdict(list)
    seen: set[str] = set()
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            by_customer[event.customer_id].append(event)
    records: list[dict[str, object]] = []
    for customer_id, history in by_customer.items():
        history.sort(key=lambda e: (e.occurred_at, e.event_id))
        state: list[Event] = []
        for i, event in enumerate(history):
            state.append(event)
            if i + 1 < len(history) and history[i + 1].occurred_at == event.occurred_at:
                continue  # a later event shares this moment: its row covers both
            state = compact(state, event.occurred_at)
            records.append(feature_record(customer_id, state, event.occurred_at))
        if progress:
            progress(len(history))
    return rows_frame(records)


def write_backfill(store: FeatureStore, events: Iterable[Event],
                   progress: Callable[[int], None] | None = None) -> int:
    """Replaces the offline backfill part with the history of `events`; returns its row count."""
    frame = feature_rows(events, progress)
    replace_backfill(Path(store.repo_path), frame)
    return len(frame)


@dataclass(frozen=True)
class LoadResult:
    """What loading an events history did."""

    history_rows: int
    accepted: int
    duplicates: int
    pushed_customers: int


def load_history(store: FeatureStore, recorder: JourneyRecorder, events: list[Event],
                 progress: Callable[[str, int | None], Callable[[int], None]] | None = None
                 ) -> LoadResult:
    """Loads a whole events history: offline backfill, Feast apply, live state, online rows."""
    def tick(what: str, total: int | None) -> Callable[[int], None] | None:
        return progress(what, total) if progress else None

    rows = write_backfill(store, events, tick("computing history rows", len(events)))
    apply_definitions(store)
    accepted = duplicates = 0
    seed_tick = tick("recording events", len(events))
    for chunk in chunked(events, 5000):
        outcome = recorder.record_parsed(chunk, flush=False)
        accepted += outcome.accepted
        duplicates += outcome.duplicates
        if seed_tick:
            seed_tick(len(chunk))
    pushed = recorder.flush(tick("pushing online rows", None))
    recorder.mark_loaded()
    return LoadResult(rows, accepted, duplicates, pushed)
