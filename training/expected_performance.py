"""Performance expected from calibrated churn risks alone, before labels exist (CBPE-style).

Confidence-based performance estimation takes each served churn risk p_i at its word: were the
outcomes drawn as independent Bernoulli(p_i), these are the figures one would expect. It needs no
labels, so a drop shows as soon as the scores move; it is only as right as the calibration, and
it cannot see a change in how features relate to churn (concept drift) that leaves scores alone.
"""

from typing import Any

import numpy as np


def expected_roc_auc(risk: np.ndarray) -> float:
    """ROC-AUC expected when outcome i ~ Bernoulli(risk_i), as the ratio of the expected count of
    correctly ordered (churner, stayer) pairs to the expected count of such pairs; ties count
    half, as in sklearn. Exact, O(n log n): risks grouped by value in ascending order, each
    group's expected churners paired with the expected stayers of all lower groups.

    NaN when fewer than two rows, or no pair can hold one churner and one stayer (every risk 0, or
    every risk 1).
    """
    p = np.asarray(risk, dtype=np.float64)
    if len(p) < 2:
        return float("nan")
    _, group = np.unique(p, return_inverse=True)
    churners = np.bincount(group, weights=p)
    stayers = np.bincount(group, weights=1.0 - p)
    # A row never pairs with itself: its own p(1-p) leaves both counts.
    own = np.bincount(group, weights=p * (1.0 - p))
    pairs = churners.sum() * stayers.sum() - own.sum()
    if pairs <= 1e-12:
        return float("nan")
    stayers_below = np.cumsum(stayers) - stayers
    ordered = float((churners * stayers_below).sum()) + 0.5 * float((churners * stayers - own).sum())
    return ordered / float(pairs)


def expected_at_share(risk: np.ndarray, share: float) -> dict[str, float]:
    """Expected capture (share of expected churners) and precision of the top `share` by risk,
    the same rows training's lift_and_capture takes."""
    p = np.asarray(risk, dtype=np.float64)
    if len(p) == 0:
        return {"share": share, "capture": float("nan"), "precision": float("nan")}
    top = np.argsort(-p, kind="stable")[:max(1, round(len(p) * share))]
    total = float(p.sum())
    return {"share": share, "capture": float(p[top].sum()) / total if total else float("nan"),
            "precision": float(p[top].mean())}


def expected_performance(risk: np.ndarray, senior_share: float) -> dict[str, Any]:
    """The CBPE figures of a set of served churn risks: rows, expected churn rate, ROC-AUC, and
    capture and precision at the senior share."""
    p = np.asarray(risk, dtype=np.float64)
    p = p[~np.isnan(p)]
    return {"rows": len(p),
            "churn_rate": float(p.mean()) if len(p) else float("nan"),
            "roc_auc": expected_roc_auc(p),
            "at_senior_share": expected_at_share(p, senior_share)}
