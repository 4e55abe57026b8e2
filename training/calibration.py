"""Fits the churn calibration on held-out rows: beta calibration, strictly increasing.

Beta calibration (Kull et al. 2017) maps a raw score p to a probability q with
logit(q) = a ln(p) - b ln(1 - p) + c, fitted by logistic regression on the calibration rows. With
a, b > 0 it is strictly increasing, so it never gives two contacts the model ranked apart the same
risk (an isotonic fit's flat steps did); when a or b comes out non-positive, Platt scaling (a = b)
is used instead. The map is stored as a dense breakpoint table (training/model_folder.py).
"""

import numpy as np
from sklearn.linear_model import LogisticRegression

from training.model_folder import Calibrator

PROBABILITY_FLOOR = 0.002  # kept off 0 and 1: no calibrated risk claims certainty
# Breakpoints at raw scores whose log-odds are 0.05 apart from -14 to 14: the interpolated table
# stays within about 1e-4 of the fitted curve.
GRID_LOG_ODDS = np.linspace(-14.0, 14.0, 561)
_EPSILON = 1e-12


class CalibrationError(ValueError):
    """Raw scores that do not rank churners above the others on the calibration rows."""


def _log_terms(raw: np.ndarray) -> np.ndarray:
    p = np.clip(raw, _EPSILON, 1.0 - _EPSILON)
    return np.column_stack([np.log(p), -np.log1p(-p)])


def fit_calibration(raw: np.ndarray, outcome: np.ndarray) -> Calibrator:
    """Beta calibration of raw held-out scores (Platt scaling as the fallback), as breakpoints."""
    terms = _log_terms(raw)
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(terms, outcome)
    a, b = (float(v) for v in fit.coef_[0])
    c = float(fit.intercept_[0])
    if a <= 0 or b <= 0:  # not increasing everywhere: one slope on the log-odds instead
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(terms.sum(axis=1)[:, None], outcome)
        a = b = float(platt.coef_[0, 0])
        c = float(platt.intercept_[0])
        if a <= 0:
            raise CalibrationError("raw churn scores do not rank churners higher on the "
                                   "calibration rows; the churn model is not usable")
    x = 1.0 / (1.0 + np.exp(-GRID_LOG_ODDS))
    log_odds = a * np.log(x) - b * np.log1p(-x) + c
    y = PROBABILITY_FLOOR + (1.0 - 2 * PROBABILITY_FLOOR) / (1.0 + np.exp(-log_odds))
    # Where the curve saturates in float64, keep only the points that still increase.
    keep = np.concatenate([[True], np.diff(y) > 0])
    return Calibrator(tuple(float(v) for v in x[keep]), tuple(float(v) for v in y[keep]))

