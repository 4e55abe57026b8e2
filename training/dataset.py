"""Training sets: labels joined point-in-time to journey features through Feast."""

from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from features.catalog import FEATURE_SERVICE_NAME, JOIN_KEY, MODEL_FEATURES, WINDOW_STATE_FIELD
from features.model_input import input_vector, recorded_contact
from features.window_state import decode

LABEL_COLUMNS = ("customer_id", "label_time", "ces", "churned")


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
    return labels


def training_frame(store: FeatureStore, labels: pd.DataFrame) -> pd.DataFrame:
    """Each label row with the model inputs its customer had at label_time.

    Feast's point-in-time join finds the latest row at or before label_time; the model input is
    then built from that row's window state at label_time by features/model_input.py, as serving
    builds it at scoring time, with the context of the contact recorded at label_time. A label
    whose customer has no row yet gets the input of an empty history, as serving scores a
    customer it has no journey for.
    """
    service = store.get_feature_service(FEATURE_SERVICE_NAME)
    joined = store.get_historical_features(entity_df=labels, features=service).to_df()
    matrix = np.empty((len(joined), len(MODEL_FEATURES)), dtype=np.float64)
    for row, customer_id, moment, state in zip(matrix, joined[JOIN_KEY], joined["event_timestamp"],
                                               joined[WINDOW_STATE_FIELD], strict=True):
        events = decode(state if isinstance(state, str) else None, customer_id)
        at = moment.timestamp()
        input_vector(events, at, recorded_contact(events, at), out=row)
    inputs = pd.DataFrame(matrix, columns=list(MODEL_FEATURES), index=joined.index)
    frame = pd.concat([joined[[JOIN_KEY, "event_timestamp", "ces", "churned"]], inputs], axis=1)
    return frame.sort_values(["event_timestamp", JOIN_KEY], kind="stable").reset_index(drop=True)
