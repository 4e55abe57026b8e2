"""Column names of the prediction log, following Feast's feature-logging schema."""

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from features.catalog import FEATURE_NAMES, FEATURE_VIEW_NAME, JOIN_KEY, REQUEST_FEATURE_NAMES

# Feast's feature logging (feast/feature_logging.py) keys each row by these three fields; a
# journey feature is "<feature view>__<feature>", a request feature keeps its own name.
REQUEST_ID = "__request_id"
LOG_TIMESTAMP = "__log_timestamp"  # timestamp("us", UTC): when the answer was made
LOG_DATE = "__log_date"  # date32: the day partition, "__log_date=YYYY-MM-DD" folders

CUSTOMER_ID = JOIN_KEY
CONTACT_ID = "contact_id"
BATCH_INDEX = "batch_index"  # the row's position in its ScoreBatch; 0 for Score
MODEL_VERSION = "model_version"
EFFORT_SCORE = "effort_score"
CHURN_RISK = "churn_risk"
SENIOR = "senior"
REASON_CODES = "reason_codes"  # list<string>, strongest first
DEGRADED_REASON = "degraded_reason"  # "" when the answer came from the models
CUSTOMER_KNOWN = "customer_known"
# Filled when a shadow challenger scored the same contact off the call path; null otherwise.
CHALLENGER_MODEL_VERSION = "challenger_model_version"
CHALLENGER_EFFORT_SCORE = "challenger_effort_score"
CHALLENGER_CHURN_RISK = "challenger_churn_risk"
CHALLENGER_SENIOR = "challenger_senior"


def logged_feature_name(feature: str) -> str:
    """The column of one model input: Feast's name for a journey feature, the plain name for a
    request feature."""
    return feature if feature in REQUEST_FEATURE_NAMES else f"{FEATURE_VIEW_NAME}__{feature}"


# Model inputs in MODEL_FEATURES order (float64, null when missing).
FEATURE_COLUMNS: tuple[str, ...] = tuple(
    logged_feature_name(name) for name in (*FEATURE_NAMES, *REQUEST_FEATURE_NAMES))

# The logged types: the writer (service/prediction_log.py) writes them and readers read with them,
# so that a file written without a nullable column reads as nulls.
SCHEMA = pa.schema([
    pa.field(CUSTOMER_ID, pa.string(), nullable=False),
    pa.field(CONTACT_ID, pa.string(), nullable=False),
    pa.field(BATCH_INDEX, pa.int32(), nullable=False),
    pa.field(MODEL_VERSION, pa.string(), nullable=False),
    pa.field(EFFORT_SCORE, pa.float64(), nullable=False),
    pa.field(CHURN_RISK, pa.float64(), nullable=False),
    pa.field(SENIOR, pa.bool_(), nullable=False),
    pa.field(REASON_CODES, pa.list_(pa.string()), nullable=False),
    pa.field(DEGRADED_REASON, pa.string(), nullable=False),
    pa.field(CUSTOMER_KNOWN, pa.bool_(), nullable=False),
    pa.field(CHALLENGER_MODEL_VERSION, pa.string()),
    pa.field(CHALLENGER_EFFORT_SCORE, pa.float64()),
    pa.field(CHALLENGER_CHURN_RISK, pa.float64()),
    pa.field(CHALLENGER_SENIOR, pa.bool_()),
    *(pa.field(name, pa.float64()) for name in FEATURE_COLUMNS),
    # Feast's system columns, last as in its logging schema.
    pa.field(LOG_TIMESTAMP, pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field(LOG_DATE, pa.date32(), nullable=False),
    pa.field(REQUEST_ID, pa.string(), nullable=False),
])
# The day folders as typed hive partitions, so that a reader's __log_date is a date (as in the
# files) and a filter on it reads only the days it names.
PARTITIONING = ds.partitioning(pa.schema([SCHEMA.field(LOG_DATE)]), flavor="hive")


def open_log(folder: Path, columns: Sequence[str] | None = None) -> ds.Dataset:
    """The prediction log under `folder` as one pyarrow dataset (all SCHEMA columns, or only
    `columns`), files being written left out: only dot files are staging files, and pyarrow's
    default would also skip the "__log_date=" folders."""
    schema = SCHEMA if columns is None else pa.schema([SCHEMA.field(c) for c in columns])
    return ds.dataset(folder, schema=schema, format="parquet", partitioning=PARTITIONING,
                      ignore_prefixes=["."])
