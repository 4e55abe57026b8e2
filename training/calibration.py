"""Fits the isotonic calibration of churn probabilities on held-out rows."""

import numpy as np
from sklearn.isotonic import IsotonicRegression

from service.calibration import Calibrator


def fit_isotonic(raw: np.ndarray, outcome: np.ndarray) -> Calibrator:
    """Isotonic regression of outcomes on raw held-out scores, as breakpoints."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, outcome)
    return Calibrator(tuple(float(v) for v in model.X_thresholds_),
                      tuple(float(v) for v in model.y_thresholds_))
