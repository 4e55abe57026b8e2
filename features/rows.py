"""Feature rows as typed frames in the journey view's schema, and the offline history file."""

from pathlib import Path

import pandas as pd

from features.catalog import FEATURE_NAMES, JOIN_KEY, JOURNEY_FEATURES
from features.definitions import OFFLINE_PATH, TIMESTAMP_FIELD


def rows_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    """Feature rows (event_timestamp in epoch seconds) as a typed frame in Feast's schema."""
    frame = pd.DataFrame.from_records(records, columns=[JOIN_KEY, TIMESTAMP_FIELD, *FEATURE_NAMES])
    micros = (frame[TIMESTAMP_FIELD].astype("float64") * 1e6).round().astype("int64")
    frame[TIMESTAMP_FIELD] = pd.to_datetime(micros, unit="us", utc=True)
    frame[JOIN_KEY] = frame[JOIN_KEY].astype("string")
    for spec in JOURNEY_FEATURES:
        frame[spec.name] = frame[spec.name].astype("int64" if spec.dtype == "int" else "float64")
    return frame


def history_path(repo_path: Path) -> Path:
    """The offline Parquet history under a Feast repo path."""
    return repo_path / OFFLINE_PATH


def ensure_history_file(repo_path: Path) -> None:
    """Creates an empty history with the right schema, so that pushes can append to it."""
    path = history_path(repo_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        rows_frame([]).to_parquet(path, index=False)
