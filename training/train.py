"""Fits the effort and churn LightGBM models and writes a versioned model folder with a report.

Rows are time-ordered. Each task splits its labelled rows by customer (a stable hash of
customer_id, so one customer's rows stay together): 85% of customers train (hyperparameters and
boosting rounds chosen by expanding-window, customer-disjoint cross-validation within them,
training/tuning.py), 15% are the held-out test on which every reported metric is measured. Churn
probabilities are calibrated (beta calibration, strictly increasing) on out-of-fold scores of all
training rows: the tuned model refitted once per customer fold, each scoring the customers it did
not see, so calibration learns from every training customer rather than a small slice. Splitting by customer
rather than by time keeps a customer's churn outcome, which covers the 90 days after each of their
labels, from teaching the model about the rows it is tested on; those customers are new to the
model, as a live customer is. Rows are not reweighted by class (churners are a sixth or so of the
rows; weighting did worse in cross-validation). Same data and seed give the same model bytes
(deterministic LightGBM and search, fixed threads).
"""

import itertools
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalog import EFFORT_DRIVERS, FEATURE_SERVICE_NAME, MODEL_FEATURES
from features.domain import (
    CHURN_HORIZON_DAYS,
    COMPLAINT_UNACKNOWLEDGED,
    DEFAULT_EFFORT_HALF_LIFE_DAYS,
    EFFORT_HALF_LIFE_CHOICES_DAYS,
    SENIOR_SHARE,
    ces_to_effort_score,
)
from features.events import Event
from training.baselines import plain_baseline, raw_event_counts
from training.calibration import fit_calibration
from training.dask_engine import fit_on_dask
from training.dataset import DECAYED_FEATURE, TRUTH_COLUMN, half_life_column
from training.evaluate import (
    churn_metrics,
    effort_by_answer,
    effort_metrics,
    headroom_captured,
    per_channel,
    rule_flags,
    tradeoff_curve,
    truth_reference,
)
from training.model_folder import write_folder
from training.promotion_gate import incumbent_metrics, refusals
from training.reference_distributions import reference_distributions
from training.report import write_report
from training.shap_summary import shap_summary
from training.tuning import (
    FOLDS,
    TRIALS,
    Tuned,
    choose_column,
    customer_groups,
    metric_for,
    tune,
)

# The model predicts the CES answer, where lower means more effort: a driver can only lower it.
EFFORT_MONOTONE = {
    "monotone_constraints": [-1 if name in EFFORT_DRIVERS else 0 for name in MODEL_FEATURES],
    "monotone_constraints_method": "advanced",
}
# Train (hyperparameters and rounds by cross-validation within it; calibration out of fold), test.
SPLITS = (0.85, 0.15)
# A fit this weak is reported and refused for promotion (training/pipeline.py).
MIN_TREES = 10
MIN_CV_ROC_AUC = 0.55
MIN_LABELS = 200


@dataclass(frozen=True)
class TrainResult:
    """Where the model folder went and what it measured."""

    version: str
    folder: Path
    metrics: dict[str, Any]


def base_params(objective: str, seed: int, extra: dict[str, Any]) -> dict[str, Any]:
    """What every fit shares; training/tuning.py adds the searched hyperparameters."""
    return {
        "objective": objective, "metric": metric_for(objective),
        "bagging_fraction": 0.9, "bagging_freq": 1, "seed": seed, "deterministic": True,
        "force_row_wise": True, "num_threads": 2, "verbosity": -1, **extra,
    }


def fit_booster(objective: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int,
                extra: dict[str, Any] | None = None, dask_client: Any = None,
                progress: Callable[[int], None] | None = None) -> tuple[lgb.Booster, Tuned]:
    """A LightGBM booster on time-ordered rows, its hyperparameters and rounds chosen by
    expanding-window cross-validation over the same rows (`groups`: their customer groups), then
    fitted on all of them.

    With a Dask client the final fit runs with lightgbm.dask across the cluster's workers.
    """
    tuned = tune(base_params(objective, seed, extra or {}), x, y, list(MODEL_FEATURES), groups,
                 seed, progress)
    if dask_client is not None:
        return fit_on_dask(dask_client, tuned.params, MODEL_FEATURES, x, y, tuned.rounds), tuned
    train = lgb.Dataset(x, y, feature_name=list(MODEL_FEATURES), free_raw_data=False)
    return lgb.train(tuned.params, train, num_boost_round=tuned.rounds), tuned


def split_by_customer(mask: np.ndarray, customer_ids: Sequence[str]) -> list[np.ndarray]:
    """The rows selected by mask, split into SPLITS (train, test) by customer."""
    bucket = customer_groups(customer_ids, 100, salt="split")
    bounds = np.cumsum([0, *[round(share * 100) for share in SPLITS]])
    parts = []
    for low, high in itertools.pairwise(bounds):
        parts.append(mask & (bucket >= low) & (bucket < high))
    return parts


def fit_thresholds(effort: np.ndarray, churn: np.ndarray, rule: np.ndarray,
                   share: float) -> tuple[float, float]:
    """Quantile thresholds so that about `share` of contacts go senior (scores or rule)."""
    low, high = 0.0, 1.0
    for _ in range(40):
        q = (low + high) / 2
        senior = (effort >= np.quantile(effort, q)) | (churn >= np.quantile(churn, q)) | rule
        if senior.mean() > share:
            low = q
        else:
            high = q
    return float(np.quantile(effort, high)), float(np.quantile(churn, high))


def train_models(frame: pd.DataFrame, models_dir: Path, seed: int = 7, synthetic: bool = False,
                 senior_share: float = SENIOR_SHARE,
                 churn_horizon_days: int = CHURN_HORIZON_DAYS,
                 data_source: str = "", dask_client: Any = None,
                 events: Sequence[Event] | None = None,
                 progress: Callable[[str, int | None], Callable[[int], None]] | None = None,
                 incumbent: Path | None = None,
                 provenance: dict[str, Any] | None = None) -> TrainResult:
    """Trains both models on a point-in-time training frame and writes the model folder.

    `dask_client` (a dask.distributed Client) trains both boosters with lightgbm.dask. With the
    raw `events` the frame was built from, the plain baseline (training/baselines.py) is trained
    and scored on the same test rows. With the `incumbent` model folder (the one serving), the
    promotion gate (training/promotion_gate.py) compares the two on the new test rows.
    """
    x = frame[list(MODEL_FEATURES)].to_numpy(dtype=np.float64)
    ces = frame["ces"].to_numpy(dtype=np.float64)
    churned = frame["churned"].to_numpy(dtype=np.float64)
    # Only labels whose churn horizon has passed are unbiased: later ones know churners only.
    horizon_closed = (frame["event_timestamp"] <= frame["event_timestamp"].max()
                      - pd.Timedelta(days=churn_horizon_days)).to_numpy()
    has_ces, has_churn = ~np.isnan(ces), ~np.isnan(churned) & horizon_closed
    if has_ces.sum() < MIN_LABELS or has_churn.sum() < MIN_LABELS:
        raise ValueError(f"too few labelled rows to train: need at least {MIN_LABELS} CES answers "
                         f"and {MIN_LABELS} churn outcomes older than the {churn_horizon_days}-day "
                         f"horizon (have {int(has_ces.sum())} and {int(has_churn.sum())})")
    customers = frame["customer_id"].astype(str).tolist()
    trained_customers, held_out = split_by_customer(np.ones(len(frame), dtype=bool), customers)
    e_train, e_test = has_ces & trained_customers, has_ces & held_out
    c_train, c_test = has_churn & trained_customers, has_churn & held_out
    groups = customer_groups(customers, FOLDS)
    decayed = _decayed_candidates(frame)
    half_life, half_life_scores = _choose_half_life(
        x, churned, c_train, groups, decayed, seed,
        progress("choosing the half-life of effort_events_decayed: candidates", len(decayed))
        if progress and decayed else None)
    # The churn model is judged on ranking (ROC-AUC, metric_for), what routing needs; the
    # calibration afterwards makes its scores probabilities.

    def trials(what: str) -> Callable[[int], None] | None:
        return progress(what, TRIALS) if progress else None

    effort_model, effort_tuned = fit_booster(
        "regression", x[e_train], ces[e_train], groups[e_train], seed, EFFORT_MONOTONE, dask_client,
        trials("tuning the effort model: trials"))
    churn_model, churn_tuned = fit_booster(
        "binary", x[c_train], churned[c_train], groups[c_train], seed, None, dask_client,
        trials("tuning the churn model: trials"))
    calibrator = fit_calibration(
        _out_of_fold_scores(churn_tuned, x[c_train], churned[c_train], groups[c_train]),
        churned[c_train])

    # One prediction per row; every split and metric below reads from these.
    raw_churn = np.asarray(churn_model.predict(x))
    risk = calibrator.apply(raw_churn)
    predicted_ces = np.clip(np.asarray(effort_model.predict(x)), 1.0, 7.0)
    rule = rule_flags(frame)
    test_rows = c_test | e_test
    metrics: dict[str, Any] = {
        "churn": churn_metrics(risk[c_test], raw_churn[c_test], churned[c_test], rule[c_test],
                               senior_share),
        "effort": effort_metrics(predicted_ces[e_test], ces[e_test], rule[e_test]),
        "per_channel": per_channel(frame[test_rows], risk[c_test], churned[c_test],
                                   predicted_ces[e_test], ces[e_test], c_test[test_rows],
                                   e_test[test_rows]),
        "importance": _importance(effort_model, churn_model),
        "trees": {"effort": effort_model.num_trees(), "churn": churn_model.num_trees()},
        "degenerate": _degenerate(effort_model, churn_model, churn_tuned),
        "tradeoff": tradeoff_curve(risk[c_test], churned[c_test]),
        "effort_by_answer": effort_by_answer(predicted_ces[e_test], ces[e_test]),
        "shap_summary": {
            "churn": shap_summary(churn_model, x[c_test], MODEL_FEATURES, 1.0, seed),
            "effort": shap_summary(effort_model, x[e_test], MODEL_FEATURES, -1.0, seed),
        },
    }
    compared = (incumbent_metrics(incumbent, MODEL_FEATURES, x[c_test], churned[c_test],
                                  _DECAYED_COLUMN,
                                  {days: values[c_test] for days, values in decayed.items()})
                if incumbent is not None else None)
    metrics["promotion_gate"] = {
        "incumbent": compared,
        "refusals": refusals(metrics["churn"]["roc_auc"], metrics["churn"]["calibration_error"],
                             compared),
    }
    if events is not None:
        moments = frame["event_timestamp"].map(lambda stamp: stamp.timestamp()).to_numpy()
        counts = raw_event_counts(events, customers, moments)
        metrics["plain_baseline"] = plain_baseline(counts, churned, ces, c_train, c_test,
                                                   e_train, e_test, groups, seed)
    truth = (frame[TRUTH_COLUMN].to_numpy(dtype=np.float64) if TRUTH_COLUMN in frame
             else np.full(len(frame), np.nan))
    if not np.isnan(truth[c_test]).any():
        metrics["truth"] = truth_reference(risk[c_test], rule[c_test], churned[c_test],
                                           truth[c_test])
        if "plain_baseline" in metrics:
            metrics["truth"]["plain_baseline_headroom_captured"] = headroom_captured(
                metrics["plain_baseline"]["churn_roc_auc"], metrics["churn"]["rule"]["roc_auc"],
                metrics["truth"]["truth_roc_auc"])

    # Thresholds on every contact of the held-out customers, labelled or not.
    effort_period, churn_period = ces_to_effort_score(predicted_ces[held_out]), risk[held_out]
    unack = frame["complaint_state"].to_numpy()[held_out] == COMPLAINT_UNACKNOWLEDGED
    t_effort, t_churn = fit_thresholds(effort_period, churn_period, unack, senior_share)
    # Thresholds for other senior-agent capacities, chosen at serving time (service/routing.py).
    threshold_table = [dict(zip(("share", "effort_score", "churn_risk"),
                                (share, *fit_thresholds(effort_period, churn_period, unack, share)),
                                strict=True))
                       for share in (s / 100 for s in range(1, 51))]
    metrics["senior_share_test_period"] = float(
        ((effort_period >= t_effort) | (churn_period >= t_churn) | unack).mean())

    created = datetime.now(UTC)
    manifest = {
        "created_at": created.isoformat(),
        "feature_service": FEATURE_SERVICE_NAME,
        "features": list(MODEL_FEATURES),
        "thresholds": {"effort_score": t_effort, "churn_risk": t_churn},
        "senior_share_target": senior_share,
        "threshold_table": threshold_table,
        "churn_calibration": calibrator.to_json(),
        "priors": {"effort_score": float(ces_to_effort_score(np.array([np.nanmean(ces)]))[0]),
                   "churn_risk": float(churned[has_churn].mean())},
        "churn_horizon_days": churn_horizon_days,
        "effort_half_life_days": half_life,
        "effort_half_life_cv_roc_auc": {f"{days:g}": score
                                        for days, score in half_life_scores.items()},
        "effort_monotone_in": list(EFFORT_DRIVERS),
        "training_window": {"start": frame["event_timestamp"].min().isoformat(),
                            "end": frame["event_timestamp"].max().isoformat()},
        "rows": {"total": len(frame), "ces_labels": int(has_ces.sum()),
                 "churn_labels": int(has_churn.sum())},
        "splits": dict(zip(("train", "test"), SPLITS, strict=True)),
        "churn_calibration_rows": f"out-of-fold scores of the training rows, {FOLDS} customer folds",
        "tuning": {"folds": FOLDS, "trials": TRIALS, "effort": _tuning(effort_tuned),
                   "churn": _tuning(churn_tuned)},
        "synthetic_data": synthetic,
        "data_source": data_source,
        "seed": seed,
        "engine": "dask" if dask_client is not None else "local",
        **(provenance or {}),
        "libraries": {name: package_version(name) for name in
                      ("lightgbm", "feast", "numpy", "scikit-learn")}
        | {"python": platform.python_version()},
    }
    headline = _headline(metrics)
    # Held-out customers' rows, as for the thresholds: their scores are out of sample, as live
    # customers' are, where the fitted rows' scores would be sharper than serving ever sees.
    reference = reference_distributions(x[held_out], effort_period, churn_period, MODEL_FEATURES)
    version, folder = write_folder(models_dir, created, effort_model, churn_model, manifest,
                                   metrics, headline, write_report, reference)
    return TrainResult(version=version, folder=folder, metrics=headline)


_DECAYED_COLUMN = MODEL_FEATURES.index(DECAYED_FEATURE)


def _out_of_fold_scores(tuned: Tuned, x: np.ndarray, y: np.ndarray,
                        groups: np.ndarray) -> np.ndarray:
    """Raw scores of every row from the tuned model fitted without that row's customer group."""
    scores = np.empty(len(y), dtype=np.float64)
    for group in np.unique(groups):
        held_out = groups == group
        train = lgb.Dataset(x[~held_out], y[~held_out], feature_name=list(MODEL_FEATURES))
        booster = lgb.train(tuned.params, train, num_boost_round=tuned.rounds)
        scores[held_out] = booster.predict(x[held_out])
    return scores


def _decayed_candidates(frame: pd.DataFrame) -> dict[float, np.ndarray]:
    """effort_events_decayed at each candidate half-life, from the training frame's columns;
    empty for a frame built without them."""
    columns = {days: half_life_column(days) for days in EFFORT_HALF_LIFE_CHOICES_DAYS}
    if not all(column in frame for column in columns.values()):
        return {}
    return {days: frame[column].to_numpy(dtype=np.float64) for days, column in columns.items()}


def _choose_half_life(x: np.ndarray, churned: np.ndarray, rows: np.ndarray, groups: np.ndarray,
                      decayed: dict[float, np.ndarray], seed: int,
                      progress: Callable[[int], None] | None = None
                      ) -> tuple[float, dict[float, float]]:
    """The half-life of effort_events_decayed whose churn model cross-validates best on the
    training rows; writes that variant into x's column. The default without candidates."""
    if not decayed:
        return DEFAULT_EFFORT_HALF_LIFE_DAYS, {}
    best, scores = choose_column(base_params("binary", seed, {}), x[rows], churned[rows],
                                 list(MODEL_FEATURES), groups[rows], _DECAYED_COLUMN,
                                 {days: values[rows] for days, values in decayed.items()},
                                 progress)
    x[:, _DECAYED_COLUMN] = decayed[best]
    return best, scores


def _importance(effort_model: lgb.Booster, churn_model: lgb.Booster) -> dict[str, dict[str, float]]:
    """Total gain per feature, as a share of each model's total."""
    shares = {}
    for name, model in (("effort", effort_model), ("churn", churn_model)):
        gain = np.asarray(model.feature_importance(importance_type="gain"), dtype=float)
        total = gain.sum() or 1.0
        shares[name] = {f: float(g / total) for f, g in zip(MODEL_FEATURES, gain, strict=True)}
    return shares


def _tuning(tuned: Tuned) -> dict[str, Any]:
    searched = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2")
    return {"hyperparameters": {name: tuned.params[name] for name in searched},
            "rounds": tuned.rounds, "cv_score": tuned.cv_score, "fold_scores": tuned.fold_scores}


def _degenerate(effort_model: lgb.Booster, churn_model: lgb.Booster, churn: Tuned) -> list[str]:
    """Why the fit is too weak to serve; empty when it is fine."""
    problems = [f"{name} model has {model.num_trees()} trees (fewer than {MIN_TREES})"
                for name, model in (("effort", effort_model), ("churn", churn_model))
                if model.num_trees() < MIN_TREES]
    if churn.cv_score < MIN_CV_ROC_AUC:
        problems.append(f"churn cross-validation ROC-AUC {churn.cv_score:.3f} is below "
                        f"{MIN_CV_ROC_AUC}")
    return problems


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures worth a glance, for the manifest and `effort models list`."""
    churn, effort = metrics["churn"], metrics["effort"]
    return {
        "churn_roc_auc": churn["roc_auc"], "churn_pr_auc": churn["pr_auc"],
        "churn_brier": churn["brier"], "churn_base_rate": churn["base_rate"],
        "churn_calibration_error": churn["calibration_error"],
        "churn_distinct_risk_share": churn["distinct_risk_share"],
        "churn_lift_at_senior_share": churn["at_senior_share"]["lift"],
        "churn_capture_at_senior_share": churn["at_senior_share"]["capture"],
        "rule_baseline_roc_auc": churn["rule"]["roc_auc"],
        "rule_baseline_lift": churn["rule"]["lift"],
        "churn_lift_at_rule_share": (churn["at_rule_share"] or {}).get("lift"),
        "effort_mae_ces": effort["mae_ces"], "effort_spearman": effort["spearman"],
        "plain_baseline_churn_roc_auc": metrics.get("plain_baseline", {}).get("churn_roc_auc"),
        "plain_baseline_effort_spearman": metrics.get("plain_baseline", {}).get("effort_spearman"),
        "truth_churn_roc_auc": metrics.get("truth", {}).get("truth_roc_auc"),
        "churn_headroom_captured": metrics.get("truth", {}).get("headroom_captured"),
        "senior_share_test_period": metrics["senior_share_test_period"],
        "degenerate": metrics["degenerate"],
        "promotion_refusals": metrics["promotion_gate"]["refusals"],
    }
