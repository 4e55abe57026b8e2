"""Fits the isotonic calibration of churn probabilities on held-out rows."""

import numpy as np
from sklearn.isotonic import IsotonicRegression

from training.model_folder import Calibrator

PROBABILITY_FLOOR = 0.002


def fit_isotonic(raw: np.ndarray, outcome: np.ndarray) -> Calibrator:
    """Isotonic regression of outcomes on raw held-out scores, as breakpoints."""
    # Kept off 0 and 1: an empty calibration bin must not claim certainty about a customer.
    model = IsotonicRegression(y_min=PROBABILITY_FLOOR, y_max=1.0 - PROBABILITY_FLOOR,
                               out_of_bounds="clip").fit(raw, outcome)
    return Calibrator(tuple(float(v) for v in model.X_thresholds_),
                      tuple(float(v) for v in model.y_thresholds_))
