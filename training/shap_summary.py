"""A SHAP summary of a model on the test rows: per feature, how much and in which direction it moves
the score, for the report's beeswarm plot.

The contributions are LightGBM's exact TreeSHAP (`pred_contrib`), which serving's compiled
explainer equals within 1e-9 (tests/integration/test_tree_shap_demo.py).
"""

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

TOP_FEATURES = 12
MAX_ROWS = 2000
POINTS_PER_FEATURE = 200


def shap_summary(booster: lgb.Booster, x: np.ndarray, names: Sequence[str], sign: float,
                 seed: int) -> list[dict[str, Any]]:
    """The TOP_FEATURES features by mean |contribution| over up to MAX_ROWS rows, each with a
    sample of (contribution, value percentile) points; `sign` turns contributions into the
    direction of the served score (-1 for the effort model, whose CES is inverted)."""
    rng = np.random.default_rng(seed)
    rows = x if len(x) <= MAX_ROWS else x[rng.choice(len(x), MAX_ROWS, replace=False)]
    contributions = sign * np.asarray(booster.predict(rows, pred_contrib=True))[:, :-1]
    strength = np.abs(contributions).mean(axis=0)
    summary = []
    for k in np.argsort(-strength)[:TOP_FEATURES]:
        values = rows[:, k]
        known = ~np.isnan(values)
        percentile = np.full(len(values), np.nan)
        if known.any():
            order = values[known].argsort().argsort()
            percentile[known] = order / max(1, known.sum() - 1)
        sample = rng.choice(len(rows), min(POINTS_PER_FEATURE, len(rows)), replace=False)
        summary.append({
            "feature": names[k], "mean_abs": float(strength[k]),
            "contribution": [float(v) for v in contributions[sample, k]],
            "value_percentile": [None if np.isnan(v) else float(v) for v in percentile[sample]],
        })
    return summary
