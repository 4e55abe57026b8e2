"""Outcome labels joined to the logged prediction each label's contact got."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import JOIN_KEY
from features.domain import DAY
from features.prediction_log_schema import CONTACT_ID, CUSTOMER_ID, LOG_TIMESTAMP

LABEL_TIME = "event_timestamp"  # read_labels' name for label_time
JOIN_KIND = "joined_by"  # how a label found its prediction: one of the kinds below
BY_CONTACT, AT_LABEL_TIME, EARLIER = "contact", "label_time", "earlier"

# A prediction logged this close to label_time is the one for the label's contact (the server's
# clock against the labels' times); otherwise the customer's latest one at most MAX_AGE before.
MATCH_TOLERANCE_SECONDS = 1.0
# One day: an older prediction was made for another contact, on a journey that has moved on.
MAX_AGE_SECONDS = DAY

_LOG_ROW, _LABEL_ROW, _AT = "__log_row", "__label_row", "__at"


@dataclass(frozen=True)
class JoinedLabels:
    """Label rows with their logged prediction, and what happened to every label."""

    rows: pd.DataFrame  # the label's columns, then the logged columns, then JOIN_KIND
    counts: dict[str, int]


def read_label_contacts(path: Path) -> pd.Series | None:
    """The labels file's optional contact_id column, in file order, or None when it has none.

    Training's schema has no contact id; a file that carries one joins each label to the
    prediction made for that very contact when it was logged at label_time."""
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
        if CONTACT_ID not in raw.columns:
            return None
        column = raw[CONTACT_ID]
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False,
                          usecols=lambda name: name == CONTACT_ID)
        if CONTACT_ID not in raw.columns:
            return None
        column = raw[CONTACT_ID]
    contacts = column.astype("string").str.strip()
    return contacts.where(contacts != "", None).reset_index(drop=True)


def join_labels(labels: pd.DataFrame, log: pd.DataFrame,
                match_tolerance_seconds: float = MATCH_TOLERANCE_SECONDS,
                max_age_seconds: float = MAX_AGE_SECONDS) -> JoinedLabels:
    """Each label (read_labels' frame, optionally with a contact_id column) with one logged
    prediction of its customer, chosen in this order:

    1. when the label names a contact: one logged for that contact within the tolerance of
       label_time;
    2. the one logged nearest label_time, within the tolerance either side;
    3. the latest one logged before label_time, at most max_age before it.

    A label with none of these is unmatched: counted, not returned. merge_asof by customer on
    time-sorted frames does each step in one pass.
    """
    left = labels.reset_index(drop=True)
    left = left.assign(**{_LABEL_ROW: np.arange(len(left)),
                          _AT: left[LABEL_TIME].dt.tz_convert("UTC").dt.as_unit("ns")})
    left = left.sort_values(_AT, kind="stable")
    contacts = log[CONTACT_ID].astype("string")
    right = pd.DataFrame({_LOG_ROW: np.arange(len(log)), CUSTOMER_ID: log[CUSTOMER_ID].astype("string"),
                          CONTACT_ID: contacts.where(contacts != ""),  # "" when the call named none
                          _AT: log[LOG_TIMESTAMP].dt.tz_convert("UTC").dt.as_unit("ns")})
    right = right.sort_values(_AT, kind="stable")
    left_keys = left[[_LABEL_ROW, _AT]].assign(**{CUSTOMER_ID: left[JOIN_KEY].astype("string")})
    tolerance = pd.Timedelta(seconds=match_tolerance_seconds)

    found = pd.Series(-1, index=left[_LABEL_ROW].to_numpy(), dtype="int64")
    kind = pd.Series("", index=found.index, dtype=object)

    def take(step: pd.DataFrame, name: str) -> None:
        hit = step[_LOG_ROW].notna().to_numpy()
        rows = step[_LABEL_ROW].to_numpy()[hit]
        fresh = found.loc[rows].to_numpy() < 0
        found.loc[rows[fresh]] = step[_LOG_ROW].to_numpy()[hit][fresh].astype("int64")
        kind.loc[rows[fresh]] = name

    if CONTACT_ID in left.columns and left[CONTACT_ID].notna().any():
        named = left[CONTACT_ID].notna().to_numpy()
        keys = left_keys[named].assign(**{CONTACT_ID: left.loc[named, CONTACT_ID].astype("string")})
        take(pd.merge_asof(keys, right[right[CONTACT_ID].notna()], on=_AT,
                           by=[CUSTOMER_ID, CONTACT_ID], direction="nearest",
                           tolerance=tolerance), BY_CONTACT)
    plain = right.drop(columns=CONTACT_ID)
    take(pd.merge_asof(left_keys, plain, on=_AT, by=CUSTOMER_ID, direction="nearest",
                       tolerance=tolerance), AT_LABEL_TIME)
    take(pd.merge_asof(left_keys, plain, on=_AT, by=CUSTOMER_ID, direction="backward",
                       tolerance=pd.Timedelta(seconds=max_age_seconds)), EARLIER)

    matched = found[found >= 0].sort_index()
    label_rows = labels.reset_index(drop=True).loc[matched.index]
    logged = log.iloc[matched.to_numpy()]
    logged = logged.drop(columns=[c for c in logged.columns if c in label_rows.columns])
    rows = pd.concat([label_rows.reset_index(drop=True), logged.reset_index(drop=True)], axis=1)
    rows[JOIN_KIND] = kind.loc[matched.index].to_numpy()

    unmatched = found[found < 0].index
    logged_customers = set(right[CUSTOMER_ID].dropna())
    never_logged = int((~labels.reset_index(drop=True).loc[unmatched, JOIN_KEY]
                        .astype("string").isin(logged_customers)).sum())
    counts = {"labels": len(labels), "joined": len(matched),
              **{f"joined_by_{name}": int((rows[JOIN_KIND] == name).sum())
                 for name in (BY_CONTACT, AT_LABEL_TIME, EARLIER)},
              "unmatched": len(unmatched),
              "unmatched_customer_never_logged": never_logged,
              "unmatched_no_prediction_in_window": len(unmatched) - never_logged}
    return JoinedLabels(rows=rows, counts=counts)
