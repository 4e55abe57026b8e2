"""The plain baseline: LightGBM on event counts taken straight from the raw events.

It shares nothing with the feature pipeline (no window state, no Feast, no features/journey.py):
per label row it counts each event type in the 1, 7, 30 and 60 days up to label_time. Scored on
the same test rows as the models, it checks the pipeline: a model on the engineered features
that ranks worse than this has lost signal somewhere on the way.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from features.domain import DAY
from features.events import KNOWN_EVENT_TYPES, Event

COUNT_WINDOWS_DAYS = (1, 7, 30, 60)
_EVENT_TYPES = tuple(sorted(KNOWN_EVENT_TYPES))
PARAMS: dict[str, Any] = {"learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40,
                          "deterministic": True, "force_row_wise": True, "num_threads": 2,
                          "verbosity": -1}
MAX_ROUNDS = 300


def raw_event_counts(events: Iterable[Event], customer_ids: Sequence[str],
                     moments: np.ndarray) -> np.ndarray:
    """Per row (customer, moment in epoch seconds): each event type's count in each window
    (moment - days, moment]; columns type-major. Duplicate event_ids count once."""
    times: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    seen: set[str] = set()
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            times[event.customer_id][event.type].append(event.occurred_at)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for r, customer in enumerate(customer_ids):
        rows_of[customer].append(r)
    out = np.zeros((len(customer_ids), len(_EVENT_TYPES) * len(COUNT_WINDOWS_DAYS)))
    for customer, rows in rows_of.items():
        at = np.asarray(moments, dtype=np.float64)[rows]
        for t, event_type in enumerate(_EVENT_TYPES):
            stamps = np.sort(np.asarray(times[customer].get(event_type, []), dtype=np.float64))
            upto = np.searchsorted(stamps, at, side="right")
            for w, days in enumerate(COUNT_WINDOWS_DAYS):
                since = np.searchsorted(stamps, at - days * DAY, side="right")
                out[rows, t * len(COUNT_WINDOWS_DAYS) + w] = upto - since
    return out


def fit_plain(objective: str, x: np.ndarray, y: np.ndarray, x_stop: np.ndarray,
              y_stop: np.ndarray, seed: int) -> lgb.Booster:
    """A LightGBM booster with default-like settings, stopped on the early-stopping rows."""
    params = {**PARAMS, "objective": objective, "seed": seed,
              "metric": "auc" if objective == "binary" else "l2"}
    train = lgb.Dataset(x, y, free_raw_data=False)
    return lgb.train(params, train, num_boost_round=MAX_ROUNDS,
                     valid_sets=[lgb.Dataset(x_stop, y_stop, reference=train)],
                     callbacks=[lgb.early_stopping(30, verbose=False)])


def plain_baseline(counts: np.ndarray, churned: np.ndarray, ces: np.ndarray,
                   churn_rows: tuple[np.ndarray, np.ndarray, np.ndarray],
                   effort_rows: tuple[np.ndarray, np.ndarray, np.ndarray],
                   seed: int) -> dict[str, Any]:
    """Churn ROC-AUC and effort Spearman of the plain baseline; rows are the models' (train,
    early stopping, test) masks, so the figures sit beside the models' on the same test rows."""
    c_train, c_stop, c_test = churn_rows
    e_train, e_stop, e_test = effort_rows
    churn = fit_plain("binary", counts[c_train], churned[c_train], counts[c_stop],
                      churned[c_stop], seed)
    effort = fit_plain("regression", counts[e_train], ces[e_train], counts[e_stop], ces[e_stop],
                       seed)
    return {
        "inputs": int(counts.shape[1]),
        "churn_roc_auc": float(roc_auc_score(churned[c_test], churn.predict(counts[c_test]))),
        "effort_spearman": float(spearmanr(effort.predict(counts[e_test]), ces[e_test]).statistic),
        "trees": {"churn": churn.num_trees(), "effort": effort.num_trees()},
    }
