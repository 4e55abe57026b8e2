"""The live models judged on their logged predictions: per model version, beside today's rule.

Realised figures come from labels joined to the log (training/prediction_join.py); expected ones
(training/expected_performance.py) from every logged churn risk, labels or not. A degraded answer
(scored from priors because the feature store failed) is counted and left out of every model
figure: it says nothing about the models.
"""

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from features.catalog import MODEL_FEATURES
from features.domain import SENIOR_SHARE, effort_score_to_ces
from features.prediction_log_schema import (
    CHALLENGER_CHURN_RISK,
    CHALLENGER_EFFORT_SCORE,
    CHALLENGER_MODEL_VERSION,
    CHALLENGER_SENIOR,
    CHURN_RISK,
    DEGRADED_REASON,
    EFFORT_SCORE,
    FEATURE_COLUMNS,
    LOG_DATE,
    LOG_TIMESTAMP,
    MODEL_VERSION,
    SENIOR,
)
from training.dataset import TRUTH_COLUMN
from training.evaluate import (
    expected_calibration_error,
    lift_and_capture,
    roc_auc_or_nan,
    rule_flags,
)
from training.expected_performance import expected_performance, expected_roc_auc
from training.prediction_join import JOIN_KIND, JoinedLabels

RELIABILITY_BINS = 10  # equal-width, the bins of expected_calibration_error


def degraded(frame: pd.DataFrame) -> np.ndarray:
    """Rows answered from priors: a non-empty degraded_reason."""
    return (frame[DEGRADED_REASON].fillna("").astype(str) != "").to_numpy()


def _flags(column: pd.Series) -> np.ndarray:
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _at_mask(outcome: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """Share flagged, capture, precision and lift of a yes/no flag."""
    churners, base = float(outcome.sum()), float(outcome.mean())
    precision = float(outcome[flagged].mean()) if flagged.any() else float("nan")
    return {"share": float(flagged.mean()),
            "capture": float(outcome[flagged].sum()) / churners if churners else float("nan"),
            "precision": precision, "lift": precision / base if base else float("nan")}


def reliability(risk: np.ndarray, outcome: np.ndarray,
                bins: int = RELIABILITY_BINS) -> list[dict[str, float]]:
    """Per equal-width risk bin with rows: mean predicted risk, observed churn rate, rows."""
    index = np.clip((risk * bins).astype(int), 0, bins - 1)
    return [{"predicted": float(risk[index == b].mean()), "observed": float(outcome[index == b].mean()),
             "rows": int((index == b).sum())} for b in range(bins) if (index == b).any()]


def rule_of(rows: pd.DataFrame) -> np.ndarray:
    """Today's rule on the logged model inputs (FEATURE_COLUMNS follow MODEL_FEATURES)."""
    inputs = pd.DataFrame(rows[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64),
                          columns=list(MODEL_FEATURES))
    return rule_flags(inputs)


def churn_figures(risk: np.ndarray, outcome: np.ndarray, served_senior: np.ndarray,
                  rule: np.ndarray, senior_share: float) -> dict[str, Any]:
    """The churn model on labelled rows: ranking, calibration, capture at the senior share, the
    served tier and the rule, and what CBPE expected on these same rows."""
    if len(outcome) == 0:
        return {"rows": 0}
    at_share = lift_and_capture(risk, outcome, senior_share)
    k = max(1, round(len(risk) * senior_share))
    at_share["precision"] = float(outcome[np.argsort(-risk, kind="stable")[:k]].mean())
    rule_share = float(rule.mean())
    return {
        "rows": len(outcome),
        "churn_rate": float(outcome.mean()),
        "roc_auc": roc_auc_or_nan(outcome, risk),
        "expected_roc_auc": expected_roc_auc(risk),
        "expected_churn_rate": float(risk.mean()),
        "brier": float(np.mean((risk - outcome) ** 2)),
        "calibration_error": expected_calibration_error(risk, outcome),
        "reliability": reliability(risk, outcome),
        "at_senior_share": at_share,
        "served_tier": _at_mask(outcome, served_senior),
        "rule": {**_at_mask(outcome, rule), "roc_auc": roc_auc_or_nan(outcome, rule.astype(float))},
        "at_rule_share": lift_and_capture(risk, outcome, rule_share) if rule_share else None,
    }


def effort_figures(effort_score: np.ndarray, ces: np.ndarray) -> dict[str, Any]:
    """The effort model on rows with a CES answer, in CES points."""
    if len(ces) == 0:
        return {"rows": 0}
    predicted = effort_score_to_ces(effort_score)
    varied = len(ces) > 2 and np.ptp(ces) > 0 and np.ptp(predicted) > 0
    return {"rows": len(ces),
            "mae_ces": float(np.mean(np.abs(predicted - ces))),
            "mae_ces_mean_baseline": float(np.mean(np.abs(ces.mean() - ces))),
            "spearman": float(spearmanr(predicted, ces).statistic) if varied else float("nan")}


def _labelled(rows: pd.DataFrame, risk_column: str, effort_column: str, senior_column: str,
              senior_share: float) -> dict[str, Any]:
    """Churn and effort figures of one model's columns on joined, non-degraded rows."""
    outcome = rows["churned"].to_numpy(dtype=np.float64)
    risk = rows[risk_column].to_numpy(dtype=np.float64)
    has_churn = ~np.isnan(outcome) & ~np.isnan(risk)
    ces = rows["ces"].to_numpy(dtype=np.float64)
    effort = rows[effort_column].to_numpy(dtype=np.float64)
    has_ces = ~np.isnan(ces) & ~np.isnan(effort)
    figures = {
        "churn": churn_figures(risk[has_churn], outcome[has_churn],
                               _flags(rows[senior_column])[has_churn], rule_of(rows)[has_churn],
                               senior_share),
        "effort": effort_figures(effort[has_ces], ces[has_ces]),
    }
    if TRUTH_COLUMN in rows.columns:
        truth = rows[TRUTH_COLUMN].to_numpy(dtype=np.float64)[has_churn]
        known = ~np.isnan(truth)
        if known.any():
            figures["churn"]["truth_roc_auc"] = roc_auc_or_nan(outcome[has_churn][known], truth[known])
    return figures


def senior_share_of(logged: pd.DataFrame) -> tuple[float, str]:
    """The share of a version's answers that went senior, or the default share when it sent none."""
    share = float(_flags(logged[SENIOR]).mean()) if len(logged) else 0.0
    return (share, "served") if share > 0 else (SENIOR_SHARE, "default")


def by_day(logged: pd.DataFrame, joined: pd.DataFrame, senior_share: float) -> list[dict[str, Any]]:
    """Per log day: CBPE over all that day's answers; realised churn figures of the day's labelled
    answers (grouped by the day the prediction was logged) where labels exist."""
    table = []
    labelled = joined[joined["churned"].notna()]
    for day, answers in logged.groupby(LOG_DATE, sort=True):
        risk = answers[CHURN_RISK].to_numpy(dtype=np.float64)
        expected = expected_performance(risk, senior_share)
        outcome_rows = labelled[labelled[LOG_DATE] == day]
        outcome = outcome_rows["churned"].to_numpy(dtype=np.float64)
        table.append({
            "day": str(day), "logged": len(answers),
            "senior_share": float(_flags(answers[SENIOR]).mean()),
            "expected_churn_rate": expected["churn_rate"],
            "expected_roc_auc": expected["roc_auc"],
            "expected_capture_at_senior_share": expected["at_senior_share"]["capture"],
            "labelled": len(outcome),
            "churn_rate": float(outcome.mean()) if len(outcome) else float("nan"),
            "roc_auc": roc_auc_or_nan(outcome, outcome_rows[CHURN_RISK].to_numpy(dtype=np.float64))
            if len(outcome) else float("nan"),
        })
    return table


def champion_challenger(logged: pd.DataFrame, joined: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (served version, challenger version): both models on the same answers, CBPE on all
    shadowed answers, realised on the labelled ones, and how often they chose the same tier."""
    pairs = []
    shadowed = logged[logged[CHALLENGER_MODEL_VERSION].notna() & logged[CHALLENGER_CHURN_RISK].notna()]
    shadowed_joined = joined[joined[CHALLENGER_MODEL_VERSION].notna()
                             & joined[CHALLENGER_CHURN_RISK].notna()]
    for (champion, challenger), answers in shadowed.groupby([MODEL_VERSION, CHALLENGER_MODEL_VERSION],
                                                            sort=True):
        share, _ = senior_share_of(answers)
        both = answers[answers[SENIOR].notna() & answers[CHALLENGER_SENIOR].notna()]
        agree = (_flags(both[SENIOR]) == _flags(both[CHALLENGER_SENIOR])).mean() if len(both) else np.nan
        rows = shadowed_joined[(shadowed_joined[MODEL_VERSION] == champion)
                               & (shadowed_joined[CHALLENGER_MODEL_VERSION] == challenger)]
        pairs.append({
            "champion": str(champion), "challenger": str(challenger), "logged": len(answers),
            "senior_share": share, "tier_agreement": float(agree),
            "challenger_senior_share": float(_flags(both[CHALLENGER_SENIOR]).mean())
            if len(both) else float("nan"),
            "expected": {
                "champion": expected_performance(answers[CHURN_RISK].to_numpy(np.float64), share),
                "challenger": expected_performance(
                    answers[CHALLENGER_CHURN_RISK].to_numpy(np.float64), share)},
            "joined": len(rows),
            "champion_figures": _labelled(rows, CHURN_RISK, EFFORT_SCORE, SENIOR, share),
            "challenger_figures": _labelled(rows, CHALLENGER_CHURN_RISK, CHALLENGER_EFFORT_SCORE,
                                            CHALLENGER_SENIOR, share),
        })
    return pairs


def evaluate_live(joined: JoinedLabels, log: pd.DataFrame) -> dict[str, Any]:
    """Every figure of the evaluation, JSON-ready but for NaN: counts, per model version (served
    senior share, CBPE on all its answers, realised on its labelled answers, per day), and the
    champion/challenger comparisons."""
    log_degraded = degraded(log)
    # All answers count for CBPE, tiers and agreement; the model inputs only on joined rows.
    answered = log.loc[~log_degraded, [c for c in log.columns if c not in FEATURE_COLUMNS]]
    rows = joined.rows
    rows_degraded = degraded(rows)
    scored = rows[~rows_degraded]
    versions = []
    for version in sorted(set(log[MODEL_VERSION].dropna()) | set(rows[MODEL_VERSION].dropna())):
        logged = answered[answered[MODEL_VERSION] == version]
        mine = rows[MODEL_VERSION] == version
        labelled = scored[scored[MODEL_VERSION] == version]
        share, source = senior_share_of(logged)
        times = logged[LOG_TIMESTAMP]
        versions.append({
            "model_version": str(version),
            "logged": {"rows": len(logged),
                       "degraded": int((log_degraded & (log[MODEL_VERSION] == version).to_numpy()).sum()),
                       "first": times.min().isoformat() if len(logged) else None,
                       "last": times.max().isoformat() if len(logged) else None},
            "senior_share": share, "senior_share_source": source,
            "expected": expected_performance(logged[CHURN_RISK].to_numpy(np.float64), share),
            "joined": {"rows": int(mine.sum()), "degraded": int((mine.to_numpy() & rows_degraded).sum()),
                       **{kind: int((rows.loc[mine, JOIN_KIND] == kind).sum())
                          for kind in sorted(set(rows.loc[mine, JOIN_KIND]))}},
            **_labelled(labelled, CHURN_RISK, EFFORT_SCORE, SENIOR, share),
            "days": by_day(logged, labelled, share),
        })
    days = sorted({d for d in log[LOG_DATE].dropna()})
    return {
        "counts": {**joined.counts, "joined_degraded": int(rows_degraded.sum()),
                   "logged": len(log), "logged_degraded": int(log_degraded.sum())},
        "log_days": {"first": _day(days[0]) if days else None,
                     "last": _day(days[-1]) if days else None},
        "versions": versions,
        "champion_challenger": champion_challenger(answered, scored),
    }


def _day(value: date) -> str:
    return value.isoformat()
