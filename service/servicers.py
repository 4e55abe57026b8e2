"""Thin gRPC adapters: proto requests to the Scorer and JourneyRecorder, results back to proto."""

import asyncio
from typing import Any

from features.recorder import JourneyRecorder
from service import metrics
from service.api.v1 import journey_service_pb2 as journey_pb
from service.api.v1 import journey_service_pb2_grpc as journey_grpc
from service.api.v1 import scoring_service_pb2 as scoring_pb
from service.api.v1 import scoring_service_pb2_grpc as scoring_grpc
from service.errors import InvalidArgument
from service.scoring import ScoreInput, ScoreKind, Scorer, ScoreResult

_KIND = {ScoreKind.EFFORT: scoring_pb.SCORE_KIND_EFFORT, ScoreKind.CHURN: scoring_pb.SCORE_KIND_CHURN,
         ScoreKind.ROUTING_RULE: scoring_pb.SCORE_KIND_ROUTING_RULE}
MAX_EVENTS_PER_CALL = 10_000


def _input(request: scoring_pb.ScoreRequest) -> ScoreInput:
    return ScoreInput(
        customer_id=request.customer_id, contact_id=request.contact_id, channel=request.channel,
        intent=request.intent, queue_wait_seconds=request.queue_wait_seconds,
        ivr_steps_so_far=request.ivr_steps_so_far, include_features=request.include_features)


def _response(result: ScoreResult) -> scoring_pb.ScoreResponse:
    response = scoring_pb.ScoreResponse(
        customer_id=result.customer_id, contact_id=result.contact_id,
        effort_score=result.effort_score, churn_risk=result.churn_risk,
        tier=scoring_pb.TIER_SENIOR if result.senior else scoring_pb.TIER_STANDARD,
        model_version=result.model_version, degraded=bool(result.degraded_reason),
        degraded_reason=result.degraded_reason, customer_known=result.customer_known,
        churn_horizon_days=result.churn_horizon_days,
        reasons=[scoring_pb.Reason(code=r.code, feature=r.feature, description=r.description,
                                   contribution=r.contribution, score_kind=_KIND[r.kind])
                 for r in result.reasons],
        features=result.features,
    )
    if result.feature_age_seconds is not None:
        response.feature_age.FromNanoseconds(int(result.feature_age_seconds * 1e9))
    response.value_at_risk = result.value_at_risk
    if result.next_best_action is not None:
        action = result.next_best_action
        response.next_best_action.CopyFrom(scoring_pb.NextBestAction(
            code=action.action.code, description=action.action.description,
            churn_risk_after=action.churn_risk_after,
            effort_score_after=action.effort_score_after))
    return response


class ScoringServicer(scoring_grpc.ScoringServiceServicer):
    """effort.v1.ScoringService over a Scorer.

    A single Score runs on the event loop (a network-store read is awaited, not waited for): it is
    short, and a thread hand-off would cost more than it. Batches run in a worker thread so that
    one large call does not hold up the others.
    """

    def __init__(self, scorer: Scorer, max_batch: int) -> None:
        self._scorer = scorer
        self._max_batch = max_batch

    async def Score(self, request: scoring_pb.ScoreRequest,
                    context: Any) -> scoring_pb.ScoreResponse:
        results = await self._scorer.score_many_async([_input(request)], "",
                                                      context.time_remaining())
        return _response(results[0])

    async def ScoreBatch(self, request: scoring_pb.ScoreBatchRequest,
                         context: Any) -> scoring_pb.ScoreBatchResponse:
        if not request.requests:
            raise InvalidArgument("requests", "requests must hold at least one ScoreRequest")
        if len(request.requests) > self._max_batch:
            raise InvalidArgument("requests", f"at most {self._max_batch} requests per call",
                                  "BATCH_TOO_LARGE")
        results = await asyncio.to_thread(
            self._scorer.score_many, [_input(r) for r in request.requests], "requests",
            context.time_remaining())
        return scoring_pb.ScoreBatchResponse(responses=[_response(r) for r in results])


class JourneyServicer(journey_grpc.JourneyServiceServicer):
    """effort.v1.JourneyService over a JourneyRecorder; recording runs in a worker thread."""

    def __init__(self, recorder: JourneyRecorder) -> None:
        self._recorder = recorder

    async def RecordEvents(self, request: journey_pb.RecordEventsRequest,
                           context: Any) -> journey_pb.RecordEventsResponse:
        if len(request.events) > MAX_EVENTS_PER_CALL:
            raise InvalidArgument("events", f"at most {MAX_EVENTS_PER_CALL} events per call",
                                  "BATCH_TOO_LARGE")
        outcome = await asyncio.to_thread(self._recorder.record, request.events)
        metrics.EVENTS_TOTAL.labels(outcome="accepted").inc(outcome.accepted)
        metrics.EVENTS_TOTAL.labels(outcome="duplicate").inc(outcome.duplicates)
        metrics.EVENTS_TOTAL.labels(outcome="rejected").inc(len(outcome.rejections))
        return journey_pb.RecordEventsResponse(
            accepted=outcome.accepted, duplicates=outcome.duplicates,
            rejected=len(outcome.rejections),
            rejected_events=[journey_pb.RejectedEvent(index=r.index, field=r.field, reason=r.reason)
                             for r in outcome.rejections])
