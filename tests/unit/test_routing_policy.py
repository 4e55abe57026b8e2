"""Routing policy files and the response fields of routing, without a store or a model."""

import json
from pathlib import Path

import pydantic
import pytest

from service.actions import ACTIONS, Suggestion
from service.responses import score_response
from service.routing import RoutingPolicy
from service.scorer import ScoreResult


def test_policy_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "policy.json"
    good.write_text(json.dumps({"senior_share": 0.3, "rules": [
        {"code": "MANY_TRANSFERS", "feature": "transfers_7d", "op": ">=", "value": 3,
         "description": "transferred 3 or more times this week"}]}))
    policy = RoutingPolicy.load(good)
    assert policy.senior_share == 0.3 and policy.rules[0].code == "MANY_TRANSFERS"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rules": [{"code": "x", "feature": "f", "op": "~", "value": 1,
                                          "description": ""}]}))
    with pytest.raises(pydantic.ValidationError):
        RoutingPolicy.load(bad)


def test_response_carries_value_at_risk_and_the_action() -> None:
    result = ScoreResult(customer_id="C1", contact_id="", effort_score=70.0, churn_risk=0.4,
                         senior=True, model_version="v", churn_horizon_days=90,
                         customer_known=True, value_at_risk=480.0,
                         next_best_action=Suggestion(ACTIONS[0], 0.25, 60.0))
    response = score_response(result)
    assert response.value_at_risk == 480.0
    assert response.next_best_action.code == "ACKNOWLEDGE_COMPLAINT"
    assert response.next_best_action.churn_risk_after == 0.25
    assert not score_response(ScoreResult("C2", "", 10.0, 0.1, False, "v", 90, True)).HasField(
        "next_best_action")
