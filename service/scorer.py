"""The scorer: customers and their contacts in, effort score, churn risk, tier and reasons out.

Transport-free; the gRPC servicers adapt requests to `ScoreInput` and `ScoreResult` back. One
call reads every customer's row at once (service/feature_reader.py), builds the model input
(features/model_input.py), scores and explains both models (service/models.py), chooses reasons
(service/reasons.py), routes (service/routing.py) and suggests an action (service/actions.py).
"""

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from features.catalog import MODEL_FEATURES
from features.limits import (
    MAX_IVR_STEPS,
    MAX_WAIT_SECONDS,
    channel_problem,
    customer_id_problem,
    id_problem,
    label_problem,
    range_problem,
)
from features.model_input import ContactContext, input_vector
from service import metrics
from service.actions import ActionPlanner, Suggestion
from service.drift import DriftMonitor
from service.errors import InvalidArgument
from service.feature_reader import DEADLINE_MARGIN, FeatureRow, FeatureStoreUnavailable
from service.models import ModelBundle, ModelBundleError
from service.reasons import Reason, choose_reasons
from service.routing import Router, RoutingPolicy

# A batch is scored BATCH_SLICE customers at a time (a few milliseconds of work), then lets the
# event loop turn LOOP_TURNS_BETWEEN_SLICES times: a Score needs several turns from arrival to
# answer (taking the call, reading the request, sending the answer), so that one turn per slice
# made a Score arriving during a batch wait for several slices (p50 15 ms instead of 2.5 ms);
# with 16 turns its p99 was 2.3x its p99 without batches, with 32 1.7-1.8x on 500 calls; on
# 2,000 calls slices of 8 gave 2.2-2.4x and slices of 4 1.3-1.6x, for batches about 10-30%
# slower (BENCHMARKS.md).
BATCH_SLICE = 4
LOOP_TURNS_BETWEEN_SLICES = 32
# Kept per customer not yet scored when a batch decides whether another slice fits before its
# deadline: a prior answer, its metrics, its response message and its share of serialising the
# batch take about 8 us; reserved 30 us for the garbage collector's pauses and a busy machine
# (with 20 us a 10,000-customer batch missed its 1 s deadline once in CI).
ANSWER_SECONDS_PER_CUSTOMER = 30e-6
SMALL_CALL_ROWS = 8  # drift sees up to this many rows of a call one by one


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

    @property
    def contact(self) -> ContactContext:
        """The arriving contact as the model input sees it."""
        return ContactContext(self.channel, self.intent, self.queue_wait_seconds,
                              self.ivr_steps_so_far)


@dataclass(frozen=True)
class ChallengerScore:
    """What the shadow challenger answered for the same contact (service/shadow.py)."""

    model_version: str
    effort_score: float
    churn_risk: float
    senior: bool


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
    # The model input row the models saw (a row of the call's own matrix, not a copy), for the
    # prediction log; None on answers from priors. Not part of the response.
    model_input: np.ndarray | None = field(default=None, repr=False, compare=False)
    # Set off the call path by the shadow challenger, for the prediction log; not in the response.
    challenger: ChallengerScore | None = field(default=None, compare=False)


class FeatureReader(Protocol):
    """Reads online rows for many customers at once."""

    def read(self, customer_ids: Sequence[str],
             time_remaining: float | None = None) -> list[FeatureRow | None]:
        """Rows in request order, None for unknown customers; raises FeatureStoreUnavailable."""
        ...

    async def read_async(self, customer_ids: Sequence[str],
                         time_remaining: float | None = None) -> list[FeatureRow | None]:
        """As `read`, awaitable on the serving event loop."""
        ...


@dataclass
class _StageTimes:
    """Seconds a call spent on its customers' reasons and routing, summed over them."""

    reasons: float = 0.0
    routing: float = 0.0


@dataclass(frozen=True)
class _Serving:
    """A model bundle with what the routing policy and the actions resolve for it, swapped as one."""

    bundle: ModelBundle
    router: Router
    planner: ActionPlanner | None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Scorer:
    """Scores contacts with the loaded model bundle; the bundle can be swapped while serving."""

    def __init__(self, reader: FeatureReader, bundle: ModelBundle, max_reasons: int = 5,
                 policy: RoutingPolicy | None = None,
                 clock: Callable[[], float] = time.time,
                 drift: DriftMonitor | None = None) -> None:
        self._reader = reader
        self._drift = drift  # sees the model input and scores of every modelled answer
        self._clock = clock  # the moment of scoring; tests set it to compare with training rows
        self._max_reasons = max_reasons
        self._policy = policy or RoutingPolicy()
        self._swap_lock = threading.Lock()
        self._store_data_lost = ""  # why every answer is degraded, while the store lost its data
        self._serving = self._prepare(bundle)
        _announce(self._serving)

    @property
    def bundle(self) -> ModelBundle:
        """The model bundle in use."""
        return self._serving.bundle

    @property
    def loaded_at(self) -> datetime:
        """When the model bundle in use was loaded."""
        return self._serving.loaded_at

    def _prepare(self, bundle: ModelBundle) -> _Serving:
        if bundle.feature_names != MODEL_FEATURES:
            raise ModelBundleError(f"model {bundle.version} does not take the model input "
                                   "features/model_input.py builds")
        planner = ActionPlanner(bundle) if self._policy.next_best_action else None
        return _Serving(bundle, Router(self._policy, bundle), planner)

    def swap(self, bundle: ModelBundle) -> None:
        """Serves `bundle` from the next call on; calls in flight finish with the old one."""
        serving = self._prepare(bundle)
        with self._swap_lock:
            metrics.MODEL_INFO.labels(version=self._serving.bundle.version).set(0)
            self._serving = serving
            _announce(serving)
        if self._drift is not None:
            self._drift.swap(bundle.drift_reference)

    def store_data_lost(self, reason: str) -> None:
        """From now on every answer is a prior flagged degraded with `reason`; "" ends it."""
        self._store_data_lost = reason

    def score_many(self, inputs: Sequence[ScoreInput], field_prefix: str = "",
                   time_remaining: float | None = None) -> list[ScoreResult]:
        """Scores each input; invalid input raises InvalidArgument naming the field.

        `time_remaining` (seconds until the caller's deadline) bounds the feature read; a late or
        failed read gives prior-based answers flagged degraded, never an error.
        """
        validate_inputs(inputs, field_prefix)
        if self._store_data_lost:
            return self._degraded(inputs, "store_data_lost", self._store_data_lost)
        started = time.perf_counter()
        try:
            rows = self._reader.read([item.customer_id for item in inputs], time_remaining)
        except FeatureStoreUnavailable as error:
            return self._score_rows(inputs, [None] * len(inputs), error)
        finally:
            metrics.STAGE_TIMERS["feature_read"].observe(time.perf_counter() - started)
        return self._score_rows(inputs, rows)

    async def score_many_async(self, inputs: Sequence[ScoreInput], field_prefix: str = "",
                               time_remaining: float | None = None) -> list[ScoreResult]:
        """As `score_many`, awaiting the feature read so that the event loop stays free."""
        validate_inputs(inputs, field_prefix)
        return await self._read_and_score(inputs, time_remaining)

    async def score_in_slices(self, inputs: Sequence[ScoreInput], field_prefix: str = "",
                              time_remaining: float | None = None
                              ) -> AsyncIterator[list[ScoreResult]]:
        """As `score_many_async` for a batch, yielding results a slice at a time and letting the
        event loop run other calls between slices. When the deadline is too close for another
        slice, the customers not yet scored get prior answers flagged degraded."""
        validate_inputs(inputs, field_prefix)
        started = time.monotonic()
        slowest = 0.0
        for start in range(0, len(inputs), BATCH_SLICE):
            left = None if time_remaining is None else time_remaining - (
                time.monotonic() - started)
            to_answer = (len(inputs) - start) * ANSWER_SECONDS_PER_CUSTOMER
            if left is not None and left < slowest + DEADLINE_MARGIN + to_answer:
                yield self._degraded(inputs[start:], "deadline", "deadline reached before this "
                                     "customer of the batch was scored")
                return
            began = time.monotonic()
            yield await self._read_and_score(inputs[start:start + BATCH_SLICE], left)
            slowest = max(slowest, time.monotonic() - began)
            for _ in range(LOOP_TURNS_BETWEEN_SLICES):
                await asyncio.sleep(0)

    async def _read_and_score(self, inputs: Sequence[ScoreInput],
                              time_remaining: float | None) -> list[ScoreResult]:
        if self._store_data_lost:
            return self._degraded(inputs, "store_data_lost", self._store_data_lost)
        started = time.perf_counter()
        try:
            rows = await self._reader.read_async([item.customer_id for item in inputs],
                                                 time_remaining)
        except FeatureStoreUnavailable as error:
            return self._score_rows(inputs, [None] * len(inputs), error)
        finally:
            metrics.STAGE_TIMERS["feature_read"].observe(time.perf_counter() - started)
        return self._score_rows(inputs, rows)

    def _score_rows(self, inputs: Sequence[ScoreInput], rows: Sequence[FeatureRow | None],
                    failure: FeatureStoreUnavailable | None = None) -> list[ScoreResult]:
        """Scores every input with the models; a customer with no stored row (never seen, or
        nothing within the retention span) from an empty history. Only a failed read gives
        population priors, flagged degraded."""
        if failure is not None:
            return self._degraded(inputs, failure.kind, f"feature store unavailable: {failure}")
        # One bundle for the whole call, even if a swap happens meanwhile.
        results = self._modelled(inputs, rows, self._serving)
        for result in results:
            _observe(result)
        return results

    def _degraded(self, inputs: Sequence[ScoreInput], kind: str, why: str) -> list[ScoreResult]:
        """Prior answers flagged degraded with `why`, counted under the metric reason `kind`."""
        metrics.DEGRADED_TOTAL.labels(reason=kind).inc(len(inputs))
        results = [_prior(item, self._serving.bundle, why) for item in inputs]
        for result in results:
            _observe(result)
        return results

    def _modelled(self, inputs: Sequence[ScoreInput], rows: Sequence[FeatureRow | None],
                  serving: _Serving) -> list[ScoreResult]:
        began = time.perf_counter()
        now = self._clock()
        bundle = serving.bundle
        matrix = np.empty((len(inputs), len(MODEL_FEATURES)), dtype=np.float64)
        unusable: dict[int, str] = {}  # row -> why its stored journey cannot be scored
        for j, (out, item, row) in enumerate(zip(matrix, inputs, rows, strict=True)):
            problem = _journey_problem(out, row, now, item.contact, bundle.effort_half_life_days)
            if problem:
                unusable[j] = problem
                input_vector([], now, item.contact, out=out,
                             half_life_days=bundle.effort_half_life_days)
        built = time.perf_counter()
        explained = bundle.explain(matrix)
        modelled = time.perf_counter()
        actions = (serving.planner.best(matrix, explained.churn_risk) if serving.planner
                   else [None] * len(inputs))
        stages = _StageTimes(routing=time.perf_counter() - modelled)
        results = []
        modelled_rows = []
        for j, (item, row) in enumerate(zip(inputs, rows, strict=True)):
            why = unusable.get(j, "")
            if not why:
                try:
                    results.append(self._scored(
                        item, serving, row, matrix[j], float(explained.effort_score[j]),
                        float(explained.churn_risk[j]), explained.effort_contrib[j],
                        explained.churn_contrib[j], actions[j], now, stages))
                    modelled_rows.append(j)
                    continue
                except Exception as error:  # one customer's data must not fail a call
                    why = type(error).__name__
            metrics.DEGRADED_TOTAL.labels(reason="unusable_row").inc()
            results.append(_prior(item, bundle, f"customer's stored data unusable: {why}"))
        # Row by row costs 1.5 us a row and observe_many 13.6 us for a batch slice's 4 rows (its
        # index arrays): only a large call is worth them.
        if self._drift is not None and len(modelled_rows) <= SMALL_CALL_ROWS:
            for j in modelled_rows:
                self._drift.observe(matrix[j], float(explained.effort_score[j]),
                                    float(explained.churn_risk[j]))
        elif self._drift is not None:
            self._drift.observe_many(matrix[modelled_rows], explained.effort_score[modelled_rows],
                                     explained.churn_risk[modelled_rows])
        metrics.STAGE_TIMERS["model_input"].observe(built - began)
        metrics.STAGE_TIMERS["models"].observe(modelled - built)
        metrics.STAGE_TIMERS["reasons"].observe(stages.reasons)
        metrics.STAGE_TIMERS["routing"].observe(stages.routing)
        return results

    def _scored(self, item: ScoreInput, serving: _Serving, row: FeatureRow | None,
                vector: np.ndarray,
                effort: float, churn: float, effort_contrib: np.ndarray,
                churn_contrib: np.ndarray, action: Suggestion | None, now: float,
                stages: "_StageTimes") -> ScoreResult:
        started = time.perf_counter()
        decision = serving.router.decide(vector, effort, churn)
        decided = time.perf_counter()
        reasons = choose_reasons(vector, effort_contrib, churn_contrib, self._max_reasons,
                                 decision.rule_reasons, require_one=decision.senior)
        stages.routing += decided - started
        stages.reasons += time.perf_counter() - decided
        bundle = serving.bundle
        result = ScoreResult(
            customer_id=item.customer_id, contact_id=item.contact_id, effort_score=effort,
            churn_risk=churn, senior=decision.senior, model_version=bundle.version,
            churn_horizon_days=bundle.churn_horizon_days, customer_known=row is not None,
            reasons=reasons,
            feature_age_seconds=max(0.0, now - row.computed_at) if row is not None else None,
            value_at_risk=decision.value_at_risk, next_best_action=action, model_input=vector)
        if item.include_features:
            result.features = {name: float(value) for name, value in zip(
                MODEL_FEATURES, vector, strict=True) if not math.isnan(value)}
        return result


def _journey_problem(out: np.ndarray, row: FeatureRow | None, now: float,
                     contact: ContactContext | None, half_life_days: float) -> str:
    """Writes the row's model input into `out`; returns why it cannot be used, or ""."""
    if row is not None and row.unusable:
        return row.unusable
    try:
        input_vector(row.events if row is not None else [], now, contact, out=out,
                     half_life_days=half_life_days)
    except Exception as error:  # any stored-data fault degrades only this row
        return f"{type(error).__name__} while building the model input"
    if np.isinf(out).any():
        return "a stored value is not finite"
    return ""


def _prior(item: ScoreInput, bundle: ModelBundle, degraded_reason: str) -> ScoreResult:
    """Population priors from training, for degraded answers when no feature could be read."""
    return ScoreResult(
        customer_id=item.customer_id, contact_id=item.contact_id,
        effort_score=bundle.prior_effort_score, churn_risk=bundle.prior_churn_risk,
        senior=False, model_version=bundle.version,
        churn_horizon_days=bundle.churn_horizon_days, customer_known=False,
        degraded_reason=degraded_reason)


def _announce(serving: _Serving) -> None:
    """The loaded model's version, training time and load time, in the metrics."""
    bundle = serving.bundle
    metrics.MODEL_INFO.labels(version=bundle.version).set(1)
    metrics.MODEL_LOADED.set(serving.loaded_at.timestamp())
    created = bundle.manifest.get("created_at")
    try:
        metrics.MODEL_CREATED.set(datetime.fromisoformat(str(created)).timestamp())
    except ValueError:  # an older manifest without a readable date: its load time instead
        metrics.MODEL_CREATED.set(serving.loaded_at.timestamp())


def _observe(result: ScoreResult) -> None:
    metrics.EFFORT_SCORE.observe(result.effort_score)
    metrics.CHURN_RISK.observe(result.churn_risk)
    metrics.TIER_TOTAL.labels(tier="senior" if result.senior else "standard").inc()
    if not result.customer_known and not result.degraded_reason:
        metrics.UNKNOWN_CUSTOMER_TOTAL.inc()
    if result.feature_age_seconds is not None:
        metrics.FEATURE_AGE.observe(result.feature_age_seconds)


def validate_inputs(inputs: Sequence[ScoreInput], field_prefix: str = "") -> None:
    """Raises InvalidArgument for the first field outside features/limits.py, named as the request
    names it: `queue_wait_seconds`, or with `field_prefix` "requests" `requests[3].queue_wait_seconds`."""
    for i, item in enumerate(inputs):
        problems = {
            "customer_id": customer_id_problem(item.customer_id),
            "contact_id": id_problem("contact_id", item.contact_id, required=False),
            "channel": channel_problem("channel", item.channel),
            "intent": label_problem("intent", item.intent),
            "queue_wait_seconds": range_problem("queue_wait_seconds", item.queue_wait_seconds,
                                                0.0, MAX_WAIT_SECONDS, high_included=False),
            "ivr_steps_so_far": range_problem("ivr_steps_so_far", item.ivr_steps_so_far,
                                              0, MAX_IVR_STEPS),
        }
        for name, problem in problems.items():
            if problem is not None:
                raise InvalidArgument(f"{field_prefix}[{i}].{name}" if field_prefix else name,
                                      problem)
