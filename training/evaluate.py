"""Evaluation of the effort and churn models beside the rule contact centers use today."""

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from features.domain import CHANNEL_NAMES, COMPLAINT_ACKNOWLEDGED, COMPLAINT_UNACKNOWLEDGED

MIN_GROUP = 50



def roc_auc_or_nan(outcome: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC, NaN unless both outcomes occur."""
    return (float(roc_auc_score(outcome, score)) if len(set(outcome.tolist())) == 2
            else float("nan"))

def rule_flags(frame: pd.DataFrame) -> np.ndarray:
    """Today's rule: 3 or more contacts in 7 days, or an open (unresolved) complaint."""
    state = frame["complaint_state"].to_numpy()
    return ((frame["contacts_7d"].to_numpy() >= 3)
            | (state == COMPLAINT_UNACKNOWLEDGED) | (state == COMPLAINT_ACKNOWLEDGED))


def lift_and_capture(scores: np.ndarray, outcome: np.ndarray, share: float) -> dict[str, float]:
    """Precision lift over the base rate and share of churners caught in the top `share`."""
    k = max(1, round(len(scores) * share))
    top = np.argsort(-scores, kind="stable")[:k]
    base = outcome.mean()
    caught = outcome[top].sum()
    return {"share": share, "lift": float(outcome[top].mean() / base) if base else float("nan"),
            "capture": float(caught / outcome.sum()) if outcome.sum() else float("nan")}


def expected_calibration_error(risk: np.ndarray, outcome: np.ndarray, bins: int = 10) -> float:
    """ECE: over 10 equal-width risk bins, |mean risk - churn rate| weighted by the bin's rows."""
    index = np.clip((risk * bins).astype(int), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        rows = index == b
        if rows.any():
            error += abs(float(risk[rows].mean()) - float(outcome[rows].mean())) * float(rows.mean())
    return error


def churn_metrics(risk: np.ndarray, raw: np.ndarray, outcome: np.ndarray, rule: np.ndarray,
                  senior_share: float) -> dict[str, Any]:
    """Churn model against the rule, on held-out rows."""
    rule_share = float(rule.mean())
    fraction, mean_predicted = calibration_curve(outcome, risk, n_bins=10, strategy="quantile")
    raw_fraction, raw_predicted = calibration_curve(outcome, raw, n_bins=10, strategy="quantile")
    return {
        "rows": len(outcome),
        "base_rate": float(outcome.mean()),
        "roc_auc": float(roc_auc_score(outcome, risk)),
        "pr_auc": float(average_precision_score(outcome, risk)),
        "brier": float(brier_score_loss(outcome, risk)),
        "brier_uncalibrated": float(brier_score_loss(outcome, raw)),
        "calibration_error": expected_calibration_error(risk, outcome),
        "calibration_error_uncalibrated": expected_calibration_error(raw, outcome),
        # Calibration must not merge contacts the model told apart.
        "distinct_risk_share": len(np.unique(risk)) / max(1, len(np.unique(raw))),
        "log_loss": float(log_loss(outcome, np.clip(risk, 1e-6, 1 - 1e-6))),
        "at_senior_share": lift_and_capture(risk, outcome, senior_share),
        "at_rule_share": lift_and_capture(risk, outcome, rule_share) if rule_share else None,
        "rule": {
            "share": rule_share,
            "roc_auc": float(roc_auc_score(outcome, rule.astype(float))),
            "lift": float(outcome[rule].mean() / outcome.mean()) if rule.any() else float("nan"),
            "capture": float(outcome[rule].sum() / outcome.sum()) if outcome.sum() else float("nan"),
        },
        "calibration_curve": {"predicted": mean_predicted.tolist(), "observed": fraction.tolist(),
                              "raw_predicted": raw_predicted.tolist(),
                              "raw_observed": raw_fraction.tolist()},
        "roc_curve": _curve(*roc_curve(outcome, risk)[:2]),
        "pr_curve": _curve(*precision_recall_curve(outcome, risk)[1::-1]),
    }


def truth_reference(risk: np.ndarray, rule: np.ndarray, outcome: np.ndarray,
                    truth: np.ndarray) -> dict[str, Any]:
    """On synthetic data: the simulator's true probabilities as the ceiling, and the share of the
    rule-to-truth ROC-AUC headroom the model captures (1.0: as good as the truth)."""
    model_auc = float(roc_auc_score(outcome, risk))
    rule_auc = float(roc_auc_score(outcome, rule.astype(float)))
    truth_auc = float(roc_auc_score(outcome, truth))
    return {
        "rows": len(outcome),
        "truth_roc_auc": truth_auc,
        "headroom_captured": headroom_captured(model_auc, rule_auc, truth_auc),
        "truth_calibration_error": expected_calibration_error(truth, outcome),
        "mean_absolute_error_to_truth": float(np.mean(np.abs(risk - truth))),
    }


def headroom_captured(auc: float, rule_auc: float, truth_auc: float) -> float:
    """(auc - rule) / (truth - rule): the share of the rule-to-truth ROC-AUC gap closed."""
    gap = truth_auc - rule_auc
    return float((auc - rule_auc) / gap) if gap > 0 else float("nan")


def effort_metrics(predicted_ces: np.ndarray, ces: np.ndarray, rule: np.ndarray) -> dict[str, Any]:
    """Effort model (CES points) against the mean answer and the rule, on held-out rows."""
    mean_answer = np.full_like(ces, ces.mean())
    return {
        "rows": len(ces),
        "mae_ces": float(np.mean(np.abs(predicted_ces - ces))),
        "mae_ces_mean_baseline": float(np.mean(np.abs(mean_answer - ces))),
        "spearman": float(spearmanr(predicted_ces, ces).statistic),
        "rule_spearman": float(spearmanr(-rule.astype(float), ces).statistic)
        if 0 < rule.mean() < 1 else float("nan"),
    }


def per_channel(frame: pd.DataFrame, risk: np.ndarray, churned: np.ndarray,
                predicted_ces: np.ndarray, ces: np.ndarray, churn_rows: np.ndarray,
                ces_rows: np.ndarray) -> list[dict[str, Any]]:
    """Churn AUC and effort MAE by the channel of the contact at label time."""
    channels = frame["request_channel"].to_numpy()
    table = []
    for number, name in CHANNEL_NAMES.items():
        c_mask = channels[churn_rows] == number
        e_mask = channels[ces_rows] == number
        entry: dict[str, Any] = {"channel": name, "churn_rows": int(c_mask.sum()),
                                 "ces_rows": int(e_mask.sum())}
        if c_mask.sum() >= MIN_GROUP and 0 < churned[c_mask].mean() < 1:
            entry["churn_roc_auc"] = float(roc_auc_score(churned[c_mask], risk[c_mask]))
        if e_mask.sum() >= MIN_GROUP:
            entry["effort_mae_ces"] = float(np.mean(np.abs(predicted_ces[e_mask] - ces[e_mask])))
        if entry["churn_rows"] or entry["ces_rows"]:
            table.append(entry)
    return table


def tradeoff_curve(risk: np.ndarray, outcome: np.ndarray) -> list[dict[str, float]]:
    """Per senior share 1-50%: the share of churners caught and the precision among those sent."""
    return [{"share": share, **{k: v for k, v in lift_and_capture(risk, outcome, share).items()
                                if k == "capture"},
             "precision": float(outcome[np.argsort(-risk, kind="stable")[
                 :max(1, round(len(risk) * share))]].mean())}
            for share in (s / 100 for s in range(1, 51))]


def effort_by_answer(predicted_ces: np.ndarray, ces: np.ndarray) -> list[dict[str, Any]]:
    """Per CES answer 1-7 given: how many rows, and the quartiles of the predicted answer."""
    table = []
    for answer in range(1, 8):
        rows = ces == answer
        quartiles = (np.quantile(predicted_ces[rows], [0.1, 0.25, 0.5, 0.75, 0.9]).tolist()
                     if rows.any() else [])
        table.append({"answer": answer, "rows": int(rows.sum()), "predicted_quantiles": quartiles})
    return table


def _curve(x: np.ndarray, y: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """A curve thinned to about `points` points for the report."""
    step = max(1, len(x) // points)
    return {"x": [float(v) for v in x[::step]], "y": [float(v) for v in y[::step]]}
