"""Routing policy: configurable thresholds and rules, value at risk, the next best action."""

import numpy as np
import pytest

from features.catalog import MODEL_FEATURES
from features.event_files import read_events
from features.events import Event
from features.model_input import ContactContext, recorded_contact
from features.store import open_store
from service.actions import ACTIONS, ActionPlanner
from service.feature_reader import FeastFeatureReader
from service.models import ModelBundle, load_bundle
from service.reasons import ScoreKind
from service.routing import Router, RoutingPolicy, Rule
from service.scorer import ScoreInput, Scorer, ScoreResult
from tests.helpers import SIM_END, DemoWorld
from training.registry import current_folder

CUSTOMERS = [ScoreInput(f"C{n:06d}", include_features=True) for n in range(1, 801)]


@pytest.fixture(scope="module")
def bundle(demo_world: DemoWorld) -> ModelBundle:
    return load_bundle(current_folder(demo_world.models_dir), MODEL_FEATURES)


def _scores(demo_world: DemoWorld, bundle: ModelBundle, policy: RoutingPolicy) -> list[ScoreResult]:
    # Scored at the world's end, while journeys are live, as the thresholds were fitted.
    return Scorer(FeastFeatureReader(open_store(demo_world.repo)), bundle, policy=policy,
                  clock=SIM_END.timestamp).score_many(CUSTOMERS)


def test_senior_share_follows_capacity(demo_world: DemoWorld, bundle: ModelBundle) -> None:
    """At labelled contacts, each scored at its own moment with the contact it recorded (the
    population the threshold table was fitted on), the senior share follows the policy's."""
    by_customer: dict[str, list[Event]] = {}
    for event in read_events(demo_world.events):
        if isinstance(event, Event):
            by_customer.setdefault(event.customer_id, []).append(event)
    rows = demo_world.frame[demo_world.frame["request_channel"].notna()].sample(400, random_state=5)
    moment = [0.0]
    reader = FeastFeatureReader(open_store(demo_world.repo))
    shares = {}
    for share in (0.05, 0.4):
        scorer = Scorer(reader, bundle, policy=RoutingPolicy(senior_share=share),
                        clock=lambda: moment[0])
        senior = []
        for customer, stamp in zip(rows["customer_id"], rows["event_timestamp"], strict=True):
            moment[0] = stamp.timestamp()
            contact = recorded_contact(by_customer[str(customer)], moment[0]) or ContactContext()
            senior.append(scorer.score_many([ScoreInput(
                str(customer), channel=contact.channel, intent=contact.intent,
                queue_wait_seconds=contact.queue_wait_seconds,
                ivr_steps_so_far=contact.ivr_steps_so_far)])[0].senior)
        shares[share] = float(np.mean(senior))
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
    planner = ActionPlanner(bundle)
    for result in results[:40]:
        row = np.array([result.features.get(n, np.nan) for n in names])
        forced = planner.best(row[np.newaxis, :], np.array([result.churn_risk]), min_gain=-1.0)[0]
        assert forced is not None  # the proactive follow-up always applies
        # Re-score every applicable action by hand: the suggestion is the lowest churn risk.
        after = []
        for action in ACTIONS:
            current = row[names.index(action.feature)]
            if action.applies(current):
                changed = row.copy()
                changed[names.index(action.feature)] = action.new_value(current)
                after.append(float(bundle.predict(changed[np.newaxis, :])[1][0]))
        assert forced.churn_risk_after == pytest.approx(min(after))
        served = result.next_best_action
        if served is None:  # suggested only when it saves at least half a point of risk
            assert result.churn_risk - min(after) < 0.005
        else:
            assert served.churn_risk_after <= result.churn_risk - 0.005




@pytest.mark.parametrize("op", ["==", "!=", ">=", ">", "<=", "<"])
def test_seniors_of_many_rows_are_the_tiers_decide_gives(bundle: ModelBundle, op: str) -> None:
    """The shadow's vectorised tiers equal the call path's, rules (a missing value never fires,
    whatever the operator) and value at risk included."""
    policy = RoutingPolicy(value_at_risk_senior=400.0, rules=[
        *RoutingPolicy().rules,
        Rule(code="TRANSFERS", feature="transfers_7d", op=op, value=2, description="test rule")])
    router = Router(policy, bundle)
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 5, size=(2000, len(bundle.feature_names))).astype(np.float64)
    matrix[rng.random(matrix.shape) < 0.2] = np.nan
    matrix[:, bundle.feature_names.index("customer_value")] *= 300.0
    effort, churn = rng.uniform(0, 100, 2000), rng.uniform(0, 1, 2000)
    expected = [router.decide(row, e, c).senior
                for row, e, c in zip(matrix, effort.tolist(), churn.tolist(), strict=True)]
    seniors = router.seniors(matrix, effort, churn)
    assert seniors.tolist() == expected
    assert 0 < seniors.sum() < len(seniors)
