"""Routing policy: configurable thresholds and rules, value at risk, the next best action."""

import json
from pathlib import Path

import numpy as np
import pydantic
import pytest

from features.catalog import MODEL_FEATURES
from features.store import open_store
from service.feature_reader import FeastFeatureReader
from service.model_bundle import ModelBundle, load_bundle
from service.registry import current_folder
from service.routing import ACTIONS, RoutingPolicy, next_best_action
from service.scoring import ScoreInput, ScoreKind, Scorer, ScoreResult
from tests.conftest import DemoWorld

CUSTOMERS = [ScoreInput(f"C{n:06d}", include_features=True) for n in range(1, 801)]


@pytest.fixture(scope="module")
def bundle(demo_world: DemoWorld) -> ModelBundle:
    return load_bundle(current_folder(demo_world.models_dir), MODEL_FEATURES)


def _scores(demo_world: DemoWorld, bundle: ModelBundle, policy: RoutingPolicy) -> list[ScoreResult]:
    return Scorer(FeastFeatureReader(open_store(demo_world.repo)), bundle,
                  policy=policy).score_many(CUSTOMERS)


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


def test_senior_share_follows_capacity(demo_world: DemoWorld, bundle: ModelBundle) -> None:
    shares = {}
    for share in (0.05, 0.4):
        results = _scores(demo_world, bundle, RoutingPolicy(senior_share=share))
        shares[share] = np.mean([r.senior for r in results if r.customer_known])
    # Scored weeks after the world's last events, fewer contacts look senior than at contact
    # time, where the table was fitted; the knob must still move the share a lot.
    assert shares[0.4] > 2 * shares[0.05] > 0


def test_rules_and_value_at_risk_send_senior_with_their_reason(demo_world: DemoWorld,
                                                               bundle: ModelBundle) -> None:
    policy = RoutingPolicy(senior_share=0.01, value_at_risk_senior=50.0, rules=[])
    results = [r for r in _scores(demo_world, bundle, policy) if r.customer_known]
    at_risk = [r for r in results if r.value_at_risk >= 50.0]
    assert at_risk and all(r.senior for r in at_risk)
    assert all(r.reasons[0].code == "VALUE_AT_RISK" and r.reasons[0].kind is ScoreKind.ROUTING_RULE
               for r in at_risk)
    assert all(r.value_at_risk == pytest.approx(r.churn_risk * r.features.get(
        "customer_value", r.value_at_risk / max(r.churn_risk, 1e-9))) for r in results)


def test_next_best_action_is_the_best_real_re_score(demo_world: DemoWorld,
                                                     bundle: ModelBundle) -> None:
    results = [r for r in _scores(demo_world, bundle, RoutingPolicy()) if r.customer_known]
    names = bundle.feature_names
    for result in results[:40]:
        row = np.array([result.features.get(n, np.nan) for n in names])
        forced = next_best_action(bundle, names, row, result.churn_risk, min_gain=-1.0)
        assert forced is not None  # the proactive follow-up always applies
        # Re-score every applicable action by hand: the suggestion is the lowest churn risk.
        after = []
        for action in ACTIONS:
            if action.applies(result.features):
                changed = row.copy()
                for feature, value in action.change(result.features).items():
                    changed[names.index(feature)] = value
                after.append(float(bundle.predict(changed[np.newaxis, :])[1][0]))
        assert forced.churn_risk_after == pytest.approx(min(after))
        served = result.next_best_action
        if served is None:  # suggested only when it saves at least half a point of risk
            assert result.churn_risk - min(after) < 0.005
        else:
            assert served.churn_risk_after <= result.churn_risk - 0.005


def test_response_carries_value_at_risk_and_the_action() -> None:
    from service.routing import Suggestion
    from service.servicers import _response

    result = ScoreResult(customer_id="C1", contact_id="", effort_score=70.0, churn_risk=0.4,
                         senior=True, model_version="v", churn_horizon_days=90,
                         customer_known=True, value_at_risk=480.0,
                         next_best_action=Suggestion(ACTIONS[0], 0.25, 60.0))
    response = _response(result)
    assert response.value_at_risk == 480.0
    assert response.next_best_action.code == "ACKNOWLEDGE_COMPLAINT"
    assert response.next_best_action.churn_risk_after == 0.25
    assert not _response(ScoreResult("C2", "", 10.0, 0.1, False, "v", 90, True)).HasField(
        "next_best_action")
