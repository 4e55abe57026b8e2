"""Reads the prediction log folder (`__log_date=YYYY-MM-DD/part-*.parquet`) into one frame."""

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from features.prediction_log_schema import (
    CHALLENGER_CHURN_RISK,
    CHALLENGER_EFFORT_SCORE,
    CHALLENGER_MODEL_VERSION,
    CHALLENGER_SENIOR,
    CHURN_RISK,
    CONTACT_ID,
    CUSTOMER_ID,
    DEGRADED_REASON,
    EFFORT_SCORE,
    FEATURE_COLUMNS,
    LOG_DATE,
    LOG_TIMESTAMP,
    MODEL_VERSION,
    SENIOR,
    open_log,
)

# A step's progress: (what, total) -> the function that advances it (service/commands/progress.py).
Progress = Callable[[str, int | None], Callable[[int], None]]

# The columns evaluation reads, in their logged types (SCHEMA).
READ_COLUMNS = (LOG_TIMESTAMP, CUSTOMER_ID, CONTACT_ID, MODEL_VERSION, EFFORT_SCORE, CHURN_RISK,
                SENIOR, DEGRADED_REASON, CHALLENGER_MODEL_VERSION, CHALLENGER_EFFORT_SCORE,
                CHALLENGER_CHURN_RISK, CHALLENGER_SENIOR, *FEATURE_COLUMNS, LOG_DATE)
# Nullable pandas types for strings (Arrow-backed: a fraction of Python strings' memory) and flags;
# floats keep NaN for null.
_PANDAS_TYPES = {pa.string(): pd.StringDtype("pyarrow"), pa.bool_(): pd.BooleanDtype()}
_REQUIRED = (LOG_TIMESTAMP, CUSTOMER_ID, MODEL_VERSION, CHURN_RISK, EFFORT_SCORE)


class PredictionLogError(ValueError):
    """A prediction log folder that is missing, empty or not in the logged schema."""


def read_prediction_log(folder: Path, since: date | None = None, until: date | None = None,
                        progress: Progress | None = None) -> pd.DataFrame:
    """Every logged answer whose day (its `__log_date` folder) lies in [since, until], both
    inclusive, sorted by log time; columns READ_COLUMNS, __log_date as datetime.date."""
    if not folder.is_dir():
        raise PredictionLogError(f"prediction log folder {folder} does not exist "
                                 "(EFFORT_PREDICTION_LOG_DIR, or --log-dir)")
    try:
        dataset = open_log(folder, READ_COLUMNS)
    except (pa.ArrowInvalid, OSError) as error:
        raise PredictionLogError(f"prediction log folder {folder} cannot be read: "
                                 f"{str(error).splitlines()[0]}") from None
    if not dataset.files:
        raise PredictionLogError(f"prediction log folder {folder} holds no predictions "
                                 "(no __log_date=YYYY-MM-DD/*.parquet files)")
    day = ds.field(LOG_DATE)
    selection = ds.field(LOG_TIMESTAMP).is_valid() & ds.field(CUSTOMER_ID).is_valid()
    if since:
        selection &= day >= since
    if until:
        selection &= day <= until
    try:
        total = dataset.count_rows(filter=selection)
        tick = progress("reading logged rows", total) if progress else None
        batches = []
        for batch in dataset.to_batches(filter=selection):
            batches.append(batch)
            if tick:
                tick(batch.num_rows)
        table = pa.Table.from_batches(batches, schema=dataset.schema).sort_by(LOG_TIMESTAMP)
        del batches
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise PredictionLogError(f"prediction log folder {folder} cannot be read: "
                                 f"{str(error).splitlines()[0]}") from None
    if table.num_rows == 0:
        window = (f" between {since or 'the start'} and {until or 'the end'}"
                  if since or until else "")
        raise PredictionLogError(f"prediction log folder {folder} holds no predictions{window}")
    for column in _REQUIRED:
        if table[column].null_count == table.num_rows:
            raise PredictionLogError(f"prediction log folder {folder}: column '{column}' is "
                                     "missing or empty")
    # Column by column, each Arrow buffer freed once converted: about half the peak memory.
    return table.to_pandas(types_mapper=_PANDAS_TYPES.get, split_blocks=True, self_destruct=True)
