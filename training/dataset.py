"""Training sets: labels joined point-in-time to journey features through Feast."""

from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from features.catalog import FEATURE_SERVICE_NAME, JOIN_KEY, MODEL_FEATURES, WINDOW_STATE_FIELD
from features.domain import EFFORT_HALF_LIFE_CHOICES_DAYS
from features.history_compaction import compacted_history
from features.journey import decay_weighted, effort_event_times
from features.model_input import input_vector, recorded_contact
from features.rows import history_dir
from features.window_state import decode

LABEL_COLUMNS = ("customer_id", "label_time", "ces", "churned")
DECAYED_FEATURE = "effort_events_decayed"


def half_life_column(half_life_days: float) -> str:
    """The training frame's column of effort_events_decayed at one candidate half-life."""
    return f"{DECAYED_FEATURE}@{half_life_days:g}d"


# Optional, for synthetic data only: the simulator's true churn probability (training/simulate.py).
TRUTH_COLUMN = "true_churn_probability"


class LabelSchemaError(ValueError):
    """A labels file that does not follow the documented schema."""


def read_labels(path: Path) -> pd.DataFrame:
    """Reads a labels CSV/Parquet file (customer_id, label_time, ces, churned) and checks it."""
    if not path.is_file():
        raise LabelSchemaError(f"labels file {path} does not exist")
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in LABEL_COLUMNS if c not in raw.columns]
    if missing:
        raise LabelSchemaError(f"labels file {path} lacks column '{missing[0]}' "
                               f"(expected {', '.join(LABEL_COLUMNS)})")
    labels = pd.DataFrame({JOIN_KEY: raw["customer_id"].astype("string")})
    try:
        labels["event_timestamp"] = pd.to_datetime(raw["label_time"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise LabelSchemaError(f"column 'label_time' must hold RFC 3339 times: {error}") from None
    ces_text = raw["ces"].astype(str).str.strip()
    blank = ces_text.isin(["", "nan", "None", "<NA>", "NaN"])
    ces = pd.to_numeric(raw["ces"].where(~blank, None), errors="coerce")
    if (ces.notna() & ~ces.between(1, 7)).any() or (~blank & ces.isna()).any():
        raise LabelSchemaError("column 'ces' must hold CES answers 1-7 or be empty")
    labels["ces"] = ces
    churned = raw["churned"].astype(str).str.strip().str.lower()
    if not churned.isin(["true", "false", "", "1", "0", "1.0", "0.0", "none", "nan", "<na>"]).all():
        raise LabelSchemaError("column 'churned' must hold true, false or be empty")
    labels["churned"] = churned.map({"true": 1.0, "1": 1.0, "1.0": 1.0, "false": 0.0, "0": 0.0,
                                     "0.0": 0.0})
    if TRUTH_COLUMN in raw.columns:
        truth = pd.to_numeric(raw[TRUTH_COLUMN].replace("", None), errors="coerce")
        if (~truth.between(0, 1) & truth.notna()).any():
            raise LabelSchemaError(f"column '{TRUTH_COLUMN}' must hold probabilities 0-1 or be "
                                   "empty")
        labels[TRUTH_COLUMN] = truth.astype("float64")
    return labels


def training_frame(store: FeatureStore, labels: pd.DataFrame) -> pd.DataFrame:
    """Each label row with the model inputs its customer had at label_time.

    Feast's point-in-time join finds the latest row at or before label_time; the model input is
    then built from that row's window state at label_time by features/model_input.py, as serving
    builds it at scoring time, with the context of the contact recorded at label_time. A label
    whose customer has no row yet gets the input of an empty history, as serving scores a
    customer it has no journey for. effort_events_decayed comes once per candidate half-life too
    (half_life_column), for training to choose from. The offline history is first compacted to
    one file per day, so the read costs the same however many pushes made it.
    """
    service = store.get_feature_service(FEATURE_SERVICE_NAME)
    with compacted_history(history_dir(Path(store.repo_path))):
        joined = store.get_historical_features(entity_df=labels, features=service).to_df()
    joined = _with_labels_before_first_row(joined, labels)
    matrix = np.empty((len(joined), len(MODEL_FEATURES)), dtype=np.float64)
    decayed = np.empty((len(joined), len(EFFORT_HALF_LIFE_CHOICES_DAYS)), dtype=np.float64)
    for row, candidates, customer_id, moment, state in zip(
            matrix, decayed, joined[JOIN_KEY], joined["event_timestamp"], joined[WINDOW_STATE_FIELD],
            strict=True):
        events = decode(state if isinstance(state, str) else None, customer_id)
        at = moment.timestamp()
        input_vector(events, at, recorded_contact(events, at), out=row)
        times = effort_event_times(events, at)
        candidates[:] = [decay_weighted(times, at, days) for days in EFFORT_HALF_LIFE_CHOICES_DAYS]
    inputs = pd.DataFrame(
        np.hstack([matrix, decayed]), index=joined.index,
        columns=[*MODEL_FEATURES, *map(half_life_column, EFFORT_HALF_LIFE_CHOICES_DAYS)])
    kept = [JOIN_KEY, "event_timestamp", "ces", "churned",
            *([TRUTH_COLUMN] if TRUTH_COLUMN in joined.columns else [])]
    frame = pd.concat([joined[kept], inputs], axis=1)
    return frame.sort_values(["event_timestamp", JOIN_KEY], kind="stable").reset_index(drop=True)


def _with_labels_before_first_row(joined: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Feast's join drops a label dated before its customer's first history row (one with no row
    at all it keeps); such a label is put back with no window state, an empty history."""
    key = [JOIN_KEY, "event_timestamp"]
    found = joined[key].assign(event_timestamp=joined["event_timestamp"].dt.as_unit("ns"))
    wanted = labels.assign(event_timestamp=labels["event_timestamp"].dt.as_unit("ns"))
    merged = wanted.merge(found.drop_duplicates(), on=key, how="left", indicator=True)
    missing = merged[merged["_merge"] == "left_only"].drop(columns="_merge")
    if missing.empty:
        return joined
    return pd.concat([joined.assign(event_timestamp=joined["event_timestamp"].dt.as_unit("ns")),
                      missing.assign(**{WINDOW_STATE_FIELD: None})], ignore_index=True)
