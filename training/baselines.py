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
from training.tuning import cv_rounds, metric_for

COUNT_WINDOWS_DAYS = (1, 7, 30, 60)
_EVENT_TYPES = tuple(sorted(KNOWN_EVENT_TYPES))
# LightGBM's default hyperparameters (31 leaves, learning rate 0.1), made deterministic.
PARAMS: dict[str, Any] = {"deterministic": True, "force_row_wise": True, "num_threads": 2,
                          "verbosity": -1}


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
    moments = np.asarray(moments, dtype=np.float64)
    out = np.zeros((len(customer_ids), len(_EVENT_TYPES) * len(COUNT_WINDOWS_DAYS)))
    for customer, rows in rows_of.items():
        at = moments[rows]
        for t, event_type in enumerate(_EVENT_TYPES):
            stamps = np.sort(np.asarray(times[customer].get(event_type, []), dtype=np.float64))
            upto = np.searchsorted(stamps, at, side="right")
            for w, days in enumerate(COUNT_WINDOWS_DAYS):
                since = np.searchsorted(stamps, at - days * DAY, side="right")
                out[rows, t * len(COUNT_WINDOWS_DAYS) + w] = upto - since
    return out


def fit_plain(counts: np.ndarray, churned: np.ndarray, ces: np.ndarray,
              churn_train: np.ndarray, effort_train: np.ndarray, groups: np.ndarray,
              seed: int) -> tuple[lgb.Booster, lgb.Booster]:
    """The plain churn and effort models: LightGBM with its default settings on the counts, its
    rounds chosen by the models' cross-validation (`groups`: the rows' customer_groups), fitted
    on the models' training rows."""
    names = [f"count_{i}" for i in range(counts.shape[1])]

    def fit(objective: str, rows: np.ndarray, y: np.ndarray) -> lgb.Booster:
        params = {**PARAMS, "objective": objective, "seed": seed,
                  "metric": metric_for(objective)}
        rounds = cv_rounds(params, counts[rows], y[rows], names, groups[rows])
        return lgb.train(params, lgb.Dataset(counts[rows], y[rows], feature_name=names),
                         num_boost_round=rounds)

    return fit("binary", churn_train, churned), fit("regression", effort_train, ces)


def plain_baseline(counts: np.ndarray, churned: np.ndarray, ces: np.ndarray,
                   churn_train: np.ndarray, churn_test: np.ndarray, effort_train: np.ndarray,
                   effort_test: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, Any]:
    """Churn ROC-AUC and effort Spearman of the plain models (fit_plain) on their test rows."""
    churn, effort = fit_plain(counts, churned, ces, churn_train, effort_train, groups, seed)
    return {
        "inputs": int(counts.shape[1]),
        "churn_roc_auc": float(roc_auc_score(churned[churn_test],
                                             churn.predict(counts[churn_test]))),
        "effort_spearman": float(spearmanr(effort.predict(counts[effort_test]),
                                           ces[effort_test]).statistic),
    }
