"""Chooses the boosting rounds and main hyperparameters by time-ordered cross-validation.

The rows that train a model (time-ordered) are cut into FOLDS + 1 consecutive blocks, and their
customers into FOLDS groups (customer_groups); fold k trains on blocks 0..k without group k's
customers and validates on group k's rows of block k + 1. It is an expanding window, so no fold
learns from the future it is judged on, and customer-disjoint, because a churn label tells how the
customer's next 90 days went: a fold that trained on a customer's earlier rows would be judged on
outcomes it has already seen. A bounded, seeded Optuna search (TPE, TRIALS trials) picks the
parameters with the best mean validation score; the rounds are the mean of the folds' best rounds.
The same rows and seed give the same choice, hence the same model bytes.
"""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna

FOLDS = 3
TRIALS = 12
MAX_ROUNDS = 300
PATIENCE = 30


@dataclass(frozen=True)
class Tuned:
    """The chosen parameters and rounds, and what cross-validation measured for them."""

    params: dict[str, Any]
    rounds: int
    cv_score: float  # mean over folds: ROC-AUC for binary models, L2 for regression
    fold_scores: list[float]
    fold_rounds: list[int]


def metric_for(objective: str) -> str:
    """The validation metric of an objective: ROC-AUC for churn (binary), L2 for effort."""
    return "auc" if objective == "binary" else "l2"


def _mean_rounds(fold_rounds: list[int]) -> int:
    return max(1, round(float(np.mean(fold_rounds))))


def customer_groups(customer_ids: Sequence[str], groups: int, salt: str = "fold") -> np.ndarray:
    """A stable group number (0..groups-1) per row from its customer id: a customer's rows are
    always in one group, whatever else is in the data."""
    return np.array([zlib.crc32(f"{salt}:{customer}".encode()) % groups
                     for customer in customer_ids], dtype=np.int64)


def expanding_folds(groups: np.ndarray, folds: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row positions of each fold over time-ordered rows whose customer
    groups (0..folds-1) are `groups`."""
    rows = len(groups)
    bounds = np.linspace(0, rows, folds + 2).round().astype(int)
    position = np.arange(rows)
    return [(np.flatnonzero((position < bounds[k + 1]) & (groups != k)),
             np.flatnonzero((position >= bounds[k + 1]) & (position < bounds[k + 2])
                            & (groups == k)))
            for k in range(folds)]


def _search_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.15, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 200, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.6, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def _cross_validate(params: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str],
                    groups: np.ndarray) -> tuple[list[float], list[int]]:
    metric = params["metric"]
    scores, rounds = [], []
    for train_rows, valid_rows in expanding_folds(groups):
        train = lgb.Dataset(x[train_rows], y[train_rows], feature_name=names, free_raw_data=False)
        valid = lgb.Dataset(x[valid_rows], y[valid_rows], reference=train)
        booster = lgb.train(params, train, num_boost_round=MAX_ROUNDS, valid_sets=[valid],
                            callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])
        scores.append(float(booster.best_score["valid_0"][metric]))
        rounds.append(int(booster.best_iteration) or MAX_ROUNDS)
    return scores, rounds


def cv_rounds(params: dict[str, Any], x: np.ndarray, y: np.ndarray, names: list[str],
              groups: np.ndarray) -> int:
    """Boosting rounds for fixed parameters, by the same expanding-window cross-validation."""
    return _mean_rounds(_cross_validate(params, x, y, names, groups)[1])


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
    measured: dict[int, tuple[list[float], list[int]]] = {}

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
    return Tuned(params={**base_params, **best.params}, rounds=_mean_rounds(rounds),
                 cv_score=float(np.mean(scores)), fold_scores=scores, fold_rounds=rounds)
