"""Chooses the boosting rounds and main hyperparameters by time-ordered cross-validation.

The rows that train a model (time-ordered) are cut into FOLDS + 1 consecutive blocks, and their
customers into FOLDS groups (customer_groups); fold k trains on blocks 0..k without group k's
customers and validates on group k's rows after block k. It is an expanding window, so no fold
learns from the future it is judged on, and customer-disjoint, because a churn label tells how the
customer's next 90 days went: a fold that trained on a customer's earlier rows would be judged on
outcomes it has already seen. A bounded, seeded Optuna search (TPE, TRIALS trials) picks the
parameters with the best mean validation score; the rounds are where the folds' mean score peaks.
The same rows and seed give the same choice, hence the same model bytes.
"""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
from sklearn.metrics import roc_auc_score

FOLDS = 3
TRIALS = 12
MAX_ROUNDS = 500
PATIENCE = 30


@dataclass(frozen=True)
class Tuned:
    """The chosen parameters and rounds, and what cross-validation measured for them."""

    params: dict[str, Any]
    rounds: int
    cv_score: float  # mean over folds: ROC-AUC for binary models, L2 for regression
    fold_scores: list[float]


def metric_for(objective: str) -> str:
    """The validation metric of an objective: ROC-AUC for churn (binary), L2 for effort."""
    return "auc" if objective == "binary" else "l2"


def customer_groups(customer_ids: Sequence[str], groups: int, salt: str = "fold") -> np.ndarray:
    """A stable group number (0..groups-1) per row from its customer id: a customer's rows are
    always in one group, whatever else is in the data."""
    return np.array([zlib.crc32(f"{salt}:{customer}".encode()) % groups
                     for customer in customer_ids], dtype=np.int64)


def expanding_folds(groups: np.ndarray, folds: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row positions of each fold over time-ordered rows whose customer
    groups (0..folds-1) are `groups`: fold k trains on the first k + 1 of folds + 1 blocks
    without group k and validates on group k's later rows."""
    rows = len(groups)
    bounds = np.linspace(0, rows, folds + 2).round().astype(int)
    position = np.arange(rows)
    return [(np.flatnonzero((position < bounds[k + 1]) & (groups != k)),
             np.flatnonzero((position >= bounds[k + 1]) & (groups == k)))
            for k in range(folds)]


def _search_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        # Wide enough for the strong regularisation weak, noisy signals such as churn need.
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 1000, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
    }


def _cross_validate(params: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str],
                    groups: np.ndarray) -> tuple[list[float], int]:
    """Each fold's score at the round where the folds' mean score is best, and that round
    (lightgbm.cv on the expanding folds, early-stopped on the mean: one fold's noisy peak does
    not decide)."""
    folds = expanding_folds(groups)
    data = lgb.Dataset(x, y, feature_name=names, free_raw_data=False)
    results = lgb.cv(params, data, num_boost_round=MAX_ROUNDS, folds=folds,
                     callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
                     return_cvbooster=True)
    mean_curve, cv_booster = results[f"valid {params['metric']}-mean"], results["cvbooster"]
    assert isinstance(mean_curve, list) and isinstance(cv_booster, lgb.CVBooster)
    rounds = len(mean_curve)  # lightgbm.cv cut the curve at its best round
    scores = []
    for booster, (_, valid_rows) in zip(cv_booster.boosters, folds, strict=True):
        predicted = booster.predict(x[valid_rows], num_iteration=rounds)
        scores.append(float(roc_auc_score(y[valid_rows], predicted)) if params["metric"] == "auc"
                      else float(np.mean((predicted - y[valid_rows]) ** 2)))
    return scores, rounds


def cv_rounds(params: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str],
              groups: np.ndarray) -> int:
    """Boosting rounds for fixed parameters, by the same expanding-window cross-validation."""
    return _cross_validate(params, x, y, names, groups)[1]


def choose_column(base_params: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str],
                  groups: np.ndarray, column: int, variants: dict[float, np.ndarray],
                  progress: Callable[[int], None] | None = None
                  ) -> tuple[float, dict[float, float]]:
    """Which variant of one input column cross-validates best with fixed parameters (LightGBM's
    defaults over `base_params`); returns its key and every variant's mean score."""
    maximize = base_params["metric"] == "auc"
    scores = {}
    for key, values in variants.items():
        trial = x.copy()
        trial[:, column] = values
        scores[key] = float(np.mean(_cross_validate(base_params, trial, y, names, groups)[0]))
        if progress:
            progress(1)
    best = (max if maximize else min)(scores, key=lambda key: scores[key])
    return best, scores


def tune(base_params: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str],
         groups: np.ndarray, seed: int, progress: Callable[[int], None] | None = None) -> Tuned:
    """The best of TRIALS parameter sets by expanding-window, customer-disjoint cross-validation
    on (x, y), rows time-ordered, `groups` their customer_groups."""
    maximize = base_params["metric"] == "auc"
    measured: dict[int, tuple[list[float], int]] = {}

    def objective(trial: optuna.Trial) -> float:
        scores, rounds = _cross_validate({**base_params, **_search_space(trial)}, x, y, names,
                                         groups)
        measured[trial.number] = (scores, rounds)
        if progress:
            progress(1)
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if maximize else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=TRIALS)
    best = study.best_trial
    scores, rounds = measured[best.number]
    return Tuned(params={**base_params, **best.params}, rounds=rounds,
                 cv_score=float(np.mean(scores)), fold_scores=scores)
