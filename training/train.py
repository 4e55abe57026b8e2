"""Fits the effort and churn LightGBM models and writes a versioned model folder."""

import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from features.catalog import (
    COMPLAINT_UNACKNOWLEDGED,
    FEATURE_SERVICE_NAME,
    MODEL_FEATURES,
)
from service.model_bundle import (
    CHURN_MODEL,
    EFFORT_MODEL,
    MANIFEST,
    ces_to_effort_score,
    sha256_of,
)

SENIOR_SHARE = 0.15
VALIDATION_SHARE = 0.2
MAX_ROUNDS = 300


@dataclass(frozen=True)
class TrainResult:
    """Where the model folder went and what it measured."""

    version: str
    folder: Path
    metrics: dict[str, Any]


def _params(objective: str, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": objective, "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40,
        "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0,
        "seed": seed, "deterministic": True, "force_row_wise": True, "num_threads": 2,
        "verbosity": -1,
    }
    return params


def _fit(objective: str, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
         seed: int) -> lgb.Booster:
    train = lgb.Dataset(x, y, feature_name=list(MODEL_FEATURES), free_raw_data=False)
    valid = lgb.Dataset(x_val, y_val, reference=train)
    return lgb.train(_params(objective, seed), train, num_boost_round=MAX_ROUNDS,
                     valid_sets=[valid], callbacks=[lgb.early_stopping(30, verbose=False)])


def fit_thresholds(effort: np.ndarray, churn: np.ndarray, rule: np.ndarray,
                   share: float) -> tuple[float, float]:
    """Quantile thresholds so that about `share` of contacts go senior (scores or rule)."""
    low, high = 0.0, 1.0
    for _ in range(40):
        q = (low + high) / 2
        t_effort, t_churn = np.quantile(effort, q), np.quantile(churn, q)
        senior = (effort >= t_effort) | (churn >= t_churn) | rule
        if senior.mean() > share:
            low = q
        else:
            high = q
    return float(np.quantile(effort, high)), float(np.quantile(churn, high))


def rule_senior(frame: pd.DataFrame) -> np.ndarray:
    """The routing rule that overrides scores: an unacknowledged complaint goes senior."""
    return (frame["complaint_state"].to_numpy() == COMPLAINT_UNACKNOWLEDGED)


def train_models(frame: pd.DataFrame, models_dir: Path, seed: int = 7, synthetic: bool = False,
                 senior_share: float = SENIOR_SHARE, churn_horizon_days: int = 90) -> TrainResult:
    """Trains both models on a point-in-time training frame and writes the model folder."""
    x_all = frame[list(MODEL_FEATURES)].to_numpy(dtype=np.float64)
    is_val = _latest(np.ones(len(frame), dtype=bool))  # the frame is time-ordered
    ces = frame["ces"].to_numpy(dtype=np.float64)
    churned = frame["churned"].to_numpy(dtype=np.float64)
    has_ces = ~np.isnan(ces)
    # Only labels whose churn horizon has passed are unbiased: later ones know churners only.
    horizon_closed = (frame["event_timestamp"] <= frame["event_timestamp"].max()
                      - pd.Timedelta(days=churn_horizon_days)).to_numpy()
    has_churn = ~np.isnan(churned) & horizon_closed
    if has_ces.sum() < 100 or has_churn.sum() < 100:
        raise ValueError("too few labelled rows to train: need at least 100 CES answers and 100 "
                         f"churn outcomes older than the {churn_horizon_days}-day horizon")
    va_e, va_c = _latest(has_ces), _latest(has_churn)
    tr_e, tr_c = has_ces & ~va_e, has_churn & ~va_c
    effort_model = _fit("regression", x_all[tr_e], ces[tr_e], x_all[va_e], ces[va_e], seed)
    churn_model = _fit("binary", x_all[tr_c], churned[tr_c], x_all[va_c], churned[va_c], seed)

    effort_val = ces_to_effort_score(np.asarray(effort_model.predict(x_all[is_val])))
    churn_val = np.asarray(churn_model.predict(x_all[is_val]))
    rule_val = rule_senior(frame[is_val])
    t_effort, t_churn = fit_thresholds(effort_val, churn_val, rule_val, senior_share)

    metrics = _metrics(frame, x_all, va_e, va_c, ces, churned, effort_model, churn_model)
    metrics["senior_share_validation"] = float(
        ((effort_val >= t_effort) | (churn_val >= t_churn) | rule_val).mean())
    created = datetime.now(UTC)
    return _write_folder(models_dir, effort_model, churn_model, {
        "created_at": created.isoformat(),
        "feature_service": FEATURE_SERVICE_NAME,
        "features": list(MODEL_FEATURES),
        "thresholds": {"effort_score": t_effort, "churn_risk": t_churn},
        "senior_share_target": senior_share,
        "priors": {
            "effort_score": float(ces_to_effort_score(np.array([np.nanmean(ces)]))[0]),
            "churn_risk": float(churned[has_churn].mean()),
        },
        "churn_horizon_days": churn_horizon_days,
        "training_window": {
            "start": frame["event_timestamp"].min().isoformat(),
            "end": frame["event_timestamp"].max().isoformat(),
        },
        "rows": {"total": len(frame), "ces_labels": int(has_ces.sum()),
                 "churn_labels": int(has_churn.sum())},
        "metrics": metrics,
        "synthetic_data": synthetic,
        "seed": seed,
        "libraries": {name: package_version(name) for name in
                      ("lightgbm", "feast", "numpy", "scikit-learn")} | {
                          "python": platform.python_version()},
    }, created)


def _latest(mask: np.ndarray) -> np.ndarray:
    """The last VALIDATION_SHARE of the rows selected by mask (rows are time-ordered)."""
    index = np.flatnonzero(mask)
    latest = np.zeros_like(mask)
    latest[index[len(index) - max(1, int(len(index) * VALIDATION_SHARE)):]] = True
    return latest


def _metrics(frame: pd.DataFrame, x: np.ndarray, va_e: np.ndarray, va_c: np.ndarray,
             ces: np.ndarray, churned: np.ndarray, effort_model: lgb.Booster,
             churn_model: lgb.Booster) -> dict[str, Any]:
    predicted_ces = np.asarray(effort_model.predict(x[va_e]))
    churn_pred = np.asarray(churn_model.predict(x[va_c]))
    rule = ((frame["contacts_7d"].to_numpy() >= 3) | (frame["complaint_state"].to_numpy() == 1)
            | (frame["complaint_state"].to_numpy() == 2))[va_c]
    return {
        "validation_rows": {"ces": int(va_e.sum()), "churn": int(va_c.sum())},
        "effort_mae_ces": float(np.mean(np.abs(predicted_ces - ces[va_e]))),
        "effort_spearman": float(spearmanr(predicted_ces, ces[va_e]).statistic),
        "churn_roc_auc": float(roc_auc_score(churned[va_c], churn_pred)),
        "churn_pr_auc": float(average_precision_score(churned[va_c], churn_pred)),
        "churn_brier": float(brier_score_loss(churned[va_c], churn_pred)),
        "churn_base_rate": float(churned[va_c].mean()),
        "rule_baseline_roc_auc": float(roc_auc_score(churned[va_c], rule.astype(float))),
        "effort_trees": effort_model.num_trees(),
        "churn_trees": churn_model.num_trees(),
    }


def _write_folder(models_dir: Path, effort_model: lgb.Booster, churn_model: lgb.Booster,
                  manifest: dict[str, Any], created: datetime) -> TrainResult:
    staging = models_dir / f".staging-{created.strftime('%Y%m%d%H%M%S%f')}"
    staging.mkdir(parents=True)
    effort_model.save_model(str(staging / EFFORT_MODEL))
    churn_model.save_model(str(staging / CHURN_MODEL))
    checksums = {name: sha256_of(staging / name) for name in (EFFORT_MODEL, CHURN_MODEL)}
    version = f"{created.strftime('%Y%m%d-%H%M%S')}-{checksums[CHURN_MODEL][:8]}"
    manifest = {"version": version, **manifest, "checksums": checksums}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    folder = models_dir / version
    staging.rename(folder)
    return TrainResult(version=version, folder=folder, metrics=manifest["metrics"])
