"""The promotion gate's verdicts on the numbers it compares."""

from training.promotion_gate import refusals

SERVING = {"version": "v1", "comparable": True, "churn_roc_auc": 0.75, "calibration_error": 0.01}


def test_nothing_serving_means_no_gate() -> None:
    assert refusals(0.5, 0.2, None) == []


def test_a_model_within_the_margins_may_replace_the_serving_one() -> None:
    assert refusals(0.746, 0.019, SERVING) == []


def test_lower_roc_auc_beyond_the_margin_or_poor_calibration_is_refused() -> None:
    assert any("below the serving model v1" in r for r in refusals(0.744, 0.01, SERVING))
    assert any("calibration error 0.030" in r for r in refusals(0.80, 0.03, SERVING))
    assert len(refusals(0.70, 0.05, SERVING)) == 2


def test_an_incomparable_serving_model_still_requires_calibration() -> None:
    other = {"version": "v0", "comparable": False, "why": "trained on another feature set"}
    assert refusals(0.5, 0.01, other) == []
    assert refusals(0.9, 0.03, other) != []
