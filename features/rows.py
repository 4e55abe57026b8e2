"""Feature rows as typed frames in the journey view's schema, and the offline history folder."""

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.catalog import (
    FEATURE_NAMES,
    JOIN_KEY,
    JOURNEY_FEATURES,
    OFFLINE_PATH,
    TIMESTAMP_FIELD,
    WINDOW_STATE_FIELD,
)
from features.events import Event
from features.history_compaction import (
    PART_PREFIX,
    PARTS_BEFORE_COMPACTION,
    compact_history,
    part_count,
)
from features.journey import compute_features
from features.window_state import encode

BACKFILL_PART = "backfill.parquet"
_log = logging.getLogger(__name__)


def feature_record(customer_id: str, state: Sequence[Event], as_of: float) -> dict[str, object]:
    """One row: the features of a customer's window state at `as_of`, and the state itself."""
    row: dict[str, object] = compute_features(state, as_of)
    row[JOIN_KEY] = customer_id
    row[TIMESTAMP_FIELD] = as_of
    row[WINDOW_STATE_FIELD] = encode(state)
    return row


def rows_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    """Feature rows (event_timestamp in epoch seconds) as a typed frame in Feast's schema."""
    frame = pd.DataFrame.from_records(
        records, columns=[JOIN_KEY, TIMESTAMP_FIELD, *FEATURE_NAMES, WINDOW_STATE_FIELD])
    micros = (frame[TIMESTAMP_FIELD].astype("float64") * 1e6).round().astype("int64")
    frame[TIMESTAMP_FIELD] = pd.to_datetime(micros, unit="us", utc=True)
    frame[JOIN_KEY] = frame[JOIN_KEY].astype("string")
    frame[WINDOW_STATE_FIELD] = frame[WINDOW_STATE_FIELD].astype("string")
    for spec in JOURNEY_FEATURES:
        frame[spec.name] = frame[spec.name].astype("int64" if spec.dtype == "int" else "float64")
    return frame


def history_dir(repo_path: Path) -> Path:
    """The offline history folder under a Feast repo path."""
    return repo_path / OFFLINE_PATH


def ensure_history(repo_path: Path) -> None:
    """Creates an empty backfill part with the right schema, so reads never meet an empty folder."""
    path = history_dir(repo_path) / BACKFILL_PART
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        rows_frame([]).to_parquet(path, index=False)


def replace_backfill(repo_path: Path, frame: pd.DataFrame) -> Path:
    """Writes the bulk history (sorted by time) as the backfill part, replacing the previous one."""
    path = history_dir(repo_path) / BACKFILL_PART
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{BACKFILL_PART}.tmp"  # dot files are invisible to Parquet readers
    frame.sort_values([TIMESTAMP_FIELD, JOIN_KEY]).to_parquet(staging, index=False)
    staging.replace(path)  # readers see the old or the new part, never half of one
    return path


def append_history(repo_path: Path, frame: pd.DataFrame) -> Path:
    """Adds pushed rows to the offline history as a new part (an append, not a rewrite).

    Every PARTS_BEFORE_COMPACTION parts, the parts are merged into day files
    (features/history_compaction.py), unless another process is compacting or reading then.
    """
    folder = history_dir(repo_path)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{PART_PREFIX}{pd.Timestamp.now(tz='UTC').strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}"
    staging = folder / f".{name}.tmp"
    frame.to_parquet(staging, index=False)
    path = folder / f"{name}.parquet"
    staging.replace(path)
    if part_count(folder) >= PARTS_BEFORE_COMPACTION:
        try:
            compact_history(folder, wait=False)
        except Exception:
            # The rows are committed in their part, and the next compaction finishes or undoes a
            # failed merge: housekeeping must not fail the push.
            _log.exception("offline history compaction failed in %s", folder)
    return path
