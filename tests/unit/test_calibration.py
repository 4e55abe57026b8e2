"""Churn calibration: strictly increasing, so ranking survives, and calibrated on fresh rows."""

import numpy as np
import pytest

from training.calibration import CalibrationError, fit_calibration
from training.evaluate import expected_calibration_error


def _miscalibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores whose true churn probability is a monotone but skewed map of them, as class
    weights leave LightGBM's scores."""
    raw = 1.0 / (1.0 + np.exp(-rng.normal(0.5, 1.5, n)))
    log_odds = np.log(raw / (1.0 - raw))
    truth = 1.0 / (1.0 + np.exp(-(0.8 * log_odds - 1.6)))
    return raw, (rng.random(n) < truth).astype(float)


def test_calibration_is_strictly_increasing_and_calibrated_on_fresh_rows() -> None:
    rng = np.random.default_rng(4)
    raw, churned = _miscalibrated(rng, 4000)
    calibrator = fit_calibration(raw, churned)
    assert np.all(np.diff(calibrator.x) > 0) and np.all(np.diff(calibrator.y) > 0)
    assert min(calibrator.y) > 0.0 and max(calibrator.y) < 1.0
    fresh_raw, fresh_churned = _miscalibrated(rng, 40_000)
    risk = calibrator.apply(fresh_raw)
    assert len(np.unique(risk)) >= 0.95 * len(np.unique(fresh_raw))  # ranking survives
    assert expected_calibration_error(risk, fresh_churned) <= 0.02
    assert expected_calibration_error(fresh_raw, fresh_churned) > 0.1  # there was work to do


def test_scores_that_rank_churners_lower_are_refused() -> None:
    rng = np.random.default_rng(5)
    raw, churned = _miscalibrated(rng, 4000)
    with pytest.raises(CalibrationError):
        fit_calibration(1.0 - raw, churned)


def test_expected_calibration_error_is_the_weighted_gap() -> None:
    risk = np.array([0.1, 0.1, 0.1, 0.1, 0.75, 0.75])
    outcome = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    # Bin 1: risk 0.1, rate 0.5, 4 of 6 rows; bin 7: risk 0.75, rate 1.0, 2 of 6 rows.
    assert expected_calibration_error(risk, outcome) == pytest.approx(0.4 * 4 / 6 + 0.25 * 2 / 6)
