"""The scoring hot path: features in, effort score, churn risk, tier and reasons out.

Transport-free: the gRPC servicer adapts requests to `ScoreInput` and `ScoreResult` back.
"""

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np

from features import request_context
from features.catalog import FEATURES_BY_NAME, reason_description
from features.events import customer_id_problem
from service import metrics
from service.errors import InvalidArgument
from service.feature_reader import FeatureRow, FeatureStoreUnavailable
from service.model_bundle import ModelBundle
from service.routing import RoutingPolicy, Suggestion, next_best_actions

MIN_CONTRIBUTION = {"effort": 0.05, "churn": 0.05}  # CES points / log-odds


class ScoreKind(Enum):
    """Which score a reason drives."""

    EFFORT = "effort"
    CHURN = "churn"
    ROUTING_RULE = "routing_rule"


@dataclass(frozen=True)
class ScoreInput:
    """What a routing system tells us about an arriving contact."""

    customer_id: str
    contact_id: str = ""
    channel: int = 0
    intent: str = ""
    queue_wait_seconds: float = 0.0
    ivr_steps_so_far: int = 0
    include_features: bool = False


@dataclass(frozen=True)
class Reason:
    """One driver of a score, readable by an agent."""

    code: str
    feature: str
    description: str
    contribution: float
    kind: ScoreKind


@dataclass
class ScoreResult:
    """Scores, tier and reasons for one customer."""

    customer_id: str
    contact_id: str
    effort_score: float
    churn_risk: float
    senior: bool
    model_version: str
    churn_horizon_days: int
    customer_known: bool
    reasons: list[Reason] = field(default_factory=list)
    degraded_reason: str = ""
    feature_age_seconds: float | None = None
    features: dict[str, float] = field(default_factory=dict)
    value_at_risk: float = 0.0
    next_best_action: Suggestion | None = None


class FeatureReader(Protocol):
    """Reads online features for many customers at once."""

    def read(self, customer_ids: Sequence[str],
             time_remaining: float | None = None) -> list[FeatureRow | None]:
        """Rows in request order, None for unknown customers; raises FeatureStoreUnavailable."""
        ...

    async def read_async(self, customer_ids: Sequence[str],
                         time_remaining: float | None = None) -> list[FeatureRow | None]:
        """As `read`, awaitable on the serving event loop."""
        ...


class Scorer:
    """Scores contacts with the loaded model bundle; the bundle can be swapped while serving."""

    def __init__(self, reader: FeatureReader, bundle: ModelBundle, max_reasons: int = 5,
                 policy: RoutingPolicy | None = None) -> None:
        self._reader = reader
        self._bundle = bundle
        self._max_reasons = max_reasons
        self._policy = policy or RoutingPolicy()
        self._swap_lock = threading.Lock()
        metrics.MODEL_INFO.labels(version=bundle.version).set(1)

    @property
    def bundle(self) -> ModelBundle:
        """The model bundle in use."""
        return self._bundle

    def swap(self, bundle: ModelBundle) -> None:
        """Serves `bundle` from the next call on; calls in flight finish with the old one."""
        with self._swap_lock:
            metrics.MODEL_INFO.labels(version=self._bundle.version).set(0)
            self._bundle = bundle
            metrics.MODEL_INFO.labels(version=bundle.version).set(1)

    def score_many(self, inputs: Sequence[ScoreInput], field_prefix: str = "",
                   time_remaining: float | None = None) -> list[ScoreResult]:
        """Scores each input; invalid input raises InvalidArgument naming the field.

        `time_remaining` (seconds until the caller's deadline) bounds the feature read; a late or
        failed read gives prior-based answers flagged degraded, never an error.
        """
        _validate(inputs, field_prefix)
        try:
            rows = self._reader.read([item.customer_id for item in inputs], time_remaining)
        except FeatureStoreUnavailable as error:
            return self._score_rows(inputs, [None] * len(inputs), error)
        return self._score_rows(inputs, rows)

    async def score_many_async(self, inputs: Sequence[ScoreInput], field_prefix: str = "",
                               time_remaining: float | None = None) -> list[ScoreResult]:
        """As `score_many`, awaiting the feature read so that the event loop stays free."""
        _validate(inputs, field_prefix)
        try:
            rows = await self._reader.read_async([item.customer_id for item in inputs],
                                                 time_remaining)
        except FeatureStoreUnavailable as error:
            return self._score_rows(inputs, [None] * len(inputs), error)
        return self._score_rows(inputs, rows)

    def _score_rows(self, inputs: Sequence[ScoreInput], rows: Sequence[FeatureRow | None],
                    failure: FeatureStoreUnavailable | None = None) -> list[ScoreResult]:
        bundle = self._bundle  # one bundle for the whole call, even if a swap happens meanwhile
        now = time.time()
        degraded_reason = ""
        if failure is not None:
            degraded_reason = f"feature store unavailable: {failure}"
            metrics.DEGRADED_TOTAL.labels(reason=failure.kind).inc(len(inputs))
        known = [i for i, row in enumerate(rows) if row is not None]
        results = [self._prior(item, bundle, degraded_reason) for item in inputs]
        if known:
            matrix = np.array([_vector(rows[i], inputs[i], bundle.feature_names, now)  # type: ignore[arg-type]
                               for i in known], dtype=np.float64)
            explained = bundle.explain(matrix)
            actions = (next_best_actions(bundle, bundle.feature_names, matrix, explained.churn_risk)
                       if self._policy.next_best_action else [None] * len(known))
            for j, i in enumerate(known):
                row = rows[i]
                assert row is not None
                results[i] = self._scored(
                    inputs[i], bundle, row, matrix[j], float(explained.effort_score[j]),
                    float(explained.churn_risk[j]), explained.effort_contrib[j],
                    explained.churn_contrib[j], actions[j], now)
        for result in results:
            self._observe(result)
        return results

    def _prior(self, item: ScoreInput, bundle: ModelBundle, degraded_reason: str) -> ScoreResult:
        """Population priors from training, for customers with no readable features."""
        return ScoreResult(
            customer_id=item.customer_id, contact_id=item.contact_id,
            effort_score=bundle.prior_effort_score, churn_risk=bundle.prior_churn_risk,
            senior=False, model_version=bundle.version,
            churn_horizon_days=bundle.churn_horizon_days, customer_known=False,
            degraded_reason=degraded_reason)

    def _scored(self, item: ScoreInput, bundle: ModelBundle, row: FeatureRow, vector: np.ndarray,
                effort: float, churn: float, effort_contrib: np.ndarray,
                churn_contrib: np.ndarray, action: Suggestion | None, now: float) -> ScoreResult:
        policy, names = self._policy, bundle.feature_names
        thresholds = policy.thresholds(bundle)
        fired = policy.fired(names, vector)
        value = vector[names.index("customer_value")]
        value_at_risk = 0.0 if math.isnan(value) else churn * float(value)
        at_risk = (policy.value_at_risk_senior is not None
                   and value_at_risk >= policy.value_at_risk_senior)
        senior = (effort >= thresholds.effort_score or churn >= thresholds.churn_risk
                  or bool(fired) or at_risk)
        rule_reasons = [Reason(r.code, r.feature, r.description, 0.0, ScoreKind.ROUTING_RULE)
                        for r in fired]
        if at_risk:
            rule_reasons.append(Reason("VALUE_AT_RISK", "customer_value",
                                       f"{value_at_risk:,.0f} per year at risk", 0.0,
                                       ScoreKind.ROUTING_RULE))
        reasons = _reasons(names, vector, effort_contrib, churn_contrib, self._max_reasons,
                           rule_reasons, require_one=senior)
        result = ScoreResult(
            customer_id=item.customer_id, contact_id=item.contact_id, effort_score=effort,
            churn_risk=churn, senior=senior, model_version=bundle.version,
            churn_horizon_days=bundle.churn_horizon_days, customer_known=True, reasons=reasons,
            feature_age_seconds=max(0.0, now - row.computed_at), value_at_risk=value_at_risk,
            next_best_action=action)
        if item.include_features:
            result.features = {name: float(value) for name, value in zip(
                bundle.feature_names, vector, strict=True) if not math.isnan(value)}
        return result

    @staticmethod
    def _observe(result: ScoreResult) -> None:
        metrics.EFFORT_SCORE.observe(result.effort_score)
        metrics.CHURN_RISK.observe(result.churn_risk)
        metrics.TIER_TOTAL.labels(tier="senior" if result.senior else "standard").inc()
        if not result.customer_known and not result.degraded_reason:
            metrics.UNKNOWN_CUSTOMER_TOTAL.inc()
        if result.feature_age_seconds is not None:
            metrics.FEATURE_AGE.observe(result.feature_age_seconds)


def _validate(inputs: Sequence[ScoreInput], field_prefix: str) -> None:
    for i, item in enumerate(inputs):
        problem = customer_id_problem(item.customer_id)
        if problem:
            where = f"{field_prefix}[{i}].customer_id" if field_prefix else "customer_id"
            raise InvalidArgument(where, problem)


def _vector(row: FeatureRow, item: ScoreInput, names: Sequence[str], now: float) -> list[float]:
    """The model input at `now`: journey features recomputed from the window state (so windows
    are right at read time) and the request's context; None becomes NaN, LightGBM's missing."""
    values = row.features_at(now) | request_context.from_request(
        row.events, now, item.channel, item.intent, item.queue_wait_seconds,
        item.ivr_steps_so_far)
    return [math.nan if values[name] is None else float(values[name]) for name in names]


def _reasons(names: Sequence[str], vector: np.ndarray, effort_contrib: np.ndarray,
             churn_contrib: np.ndarray, limit: int, rule_reasons: list[Reason],
             require_one: bool) -> list[Reason]:
    """Strongest positive drivers of either score, one reason per feature, rule first."""
    candidates: list[tuple[float, float, ScoreKind, int]] = []
    for kind, contrib in ((ScoreKind.EFFORT, effort_contrib), (ScoreKind.CHURN, churn_contrib)):
        floor = MIN_CONTRIBUTION[kind.value]
        for position in np.flatnonzero(contrib[:len(names)] > 0).tolist():
            if not math.isnan(vector[position]):
                value = float(contrib[position])
                # Scale-free ranking: each contribution relative to its model's reporting floor.
                candidates.append((value / floor, value, kind, position))
    candidates.sort(key=lambda c: -c[0])
    reasons = list(rule_reasons)
    seen = {r.feature for r in reasons}
    for strength, contribution, kind, k in candidates:
        if len(reasons) >= limit:
            break
        name = names[k]
        if name in seen or (strength < 1.0 and (reasons or not require_one)):
            continue
        seen.add(name)
        spec = FEATURES_BY_NAME[name]  # descriptions are written for the chosen few only
        reasons.append(Reason(spec.reason_code, name, reason_description(spec, float(vector[k])),
                              contribution, kind))
    return reasons
