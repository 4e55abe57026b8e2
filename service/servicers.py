"""Thin gRPC adapters: proto requests to the Scorer and JourneyRecorder, results to responses."""

import asyncio
import re
import uuid
from typing import Any

from effort.v1 import journey_service_pb2 as journey_pb
from effort.v1 import journey_service_pb2_grpc as journey_grpc
from effort.v1 import scoring_service_pb2 as scoring_pb
from effort.v1 import scoring_service_pb2_grpc as scoring_grpc
from features.limits import MAX_EVENTS_PER_CALL
from features.recorder import JourneyRecorder, StoreUnavailable
from service import metrics
from service.errors import InvalidArgument, Unavailable
from service.feature_reader import DEADLINE_MARGIN
from service.prediction_log import PredictionLog
from service.responses import record_events_response, score_response
from service.scorer import ScoreInput, Scorer, ScoreResult
from service.shadow import ShadowScorer

REQUEST_ID_KEY = "x-request-id"
# What a caller's request id may be; anything else is replaced by a new one, never refused.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


def score_input(request: scoring_pb.ScoreRequest) -> ScoreInput:
    """The scorer's view of a ScoreRequest."""
    return ScoreInput(
        customer_id=request.customer_id, contact_id=request.contact_id, channel=request.channel,
        intent=request.intent, queue_wait_seconds=request.queue_wait_seconds,
        ivr_steps_so_far=request.ivr_steps_so_far, include_features=request.include_features)


def request_id(context: Any) -> str:
    """The call's `x-request-id` metadata when it is at most 128 of [A-Za-z0-9_.:@-], else a new
    one (uuid4 hex). Sent back in the answer's trailing metadata: initial metadata would need a
    send of its own before the answer, which cost about 70 us a call on loopback; trailing
    metadata goes with the status."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY:
            if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
                return value
            break
    return uuid.uuid4().hex


class ScoringServicer(scoring_grpc.ScoringServiceServicer):
    """effort.v1.ScoringService over a Scorer.

    Calls run on the event loop (a network-store read is awaited, not waited for): a Score is
    short, and a thread hand-off would cost more than it. Batches are scored a few customers at a
    time with the loop free in between (Scorer.score_in_slices), so that a Score arriving
    meanwhile waits for about one slice. In a worker thread a batch held SQLite's lock through
    its read and competed with the loop for the interpreter lock: Score p99 went from 7 to
    60-120 ms.

    Each call's request id (`request_id`) comes back in its trailing metadata; once scored, its
    answers are queued for the shadow challenger when it takes the call (it logs them with its
    own scores), else for the prediction log, when there is one.
    """

    def __init__(self, scorer: Scorer, max_batch: int,
                 prediction_log: PredictionLog | None = None,
                 shadow: ShadowScorer | None = None) -> None:
        self._scorer = scorer
        self._max_batch = max_batch
        self._log = prediction_log
        self._shadow = shadow

    def _answered(self, rid: str, results: list[ScoreResult]) -> None:
        if self._shadow is not None and self._shadow.offer(rid, results):
            return
        if self._log is not None:
            self._log.submit(rid, results)

    async def Score(self, request: scoring_pb.ScoreRequest,
                    context: Any) -> scoring_pb.ScoreResponse:
        rid = request_id(context)
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        results = await self._scorer.score_many_async([score_input(request)], "",
                                                      context.time_remaining())
        response = score_response(results[0])
        self._answered(rid, results)
        return response

    async def ScoreBatch(self, request: scoring_pb.ScoreBatchRequest,
                         context: Any) -> scoring_pb.ScoreBatchResponse:
        if not request.requests:
            raise InvalidArgument("requests", "requests must hold at least one ScoreRequest")
        if len(request.requests) > self._max_batch:
            raise InvalidArgument("requests", f"at most {self._max_batch} requests per call",
                                  "BATCH_TOO_LARGE")
        rid = request_id(context)
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        response = scoring_pb.ScoreBatchResponse()
        answered: list[ScoreResult] = []
        async for results in self._scorer.score_in_slices(
                [score_input(r) for r in request.requests], "requests", context.time_remaining()):
            response.responses.extend(score_response(r) for r in results)
            answered.extend(results)
        self._answered(rid, answered)
        return response


class JourneyServicer(journey_grpc.JourneyServiceServicer):
    """effort.v1.JourneyService over a JourneyRecorder; recording runs in a worker thread.

    A write waits on the stores for at most `timeout_seconds`, less when the caller's deadline
    is nearer, then answers UNAVAILABLE: retrying with the same event_ids is safe, each event
    counts once."""

    def __init__(self, recorder: JourneyRecorder, timeout_seconds: float) -> None:
        self._recorder = recorder
        self._timeout = timeout_seconds

    async def RecordEvents(self, request: journey_pb.RecordEventsRequest,
                           context: Any) -> journey_pb.RecordEventsResponse:
        if len(request.events) > MAX_EVENTS_PER_CALL:
            raise InvalidArgument("events", f"at most {MAX_EVENTS_PER_CALL} events per call",
                                  "BATCH_TOO_LARGE")
        remaining = context.time_remaining()
        budget = self._timeout if remaining is None else min(self._timeout,
                                                             remaining - DEADLINE_MARGIN)
        try:
            outcome = await asyncio.wait_for(
                asyncio.to_thread(self._recorder.record, request.events, budget), budget)
        except TimeoutError as error:
            raise Unavailable(f"the stores did not take the events within {budget * 1000:.0f} "
                              "ms; retry with the same event_ids") from error
        except StoreUnavailable as error:
            raise Unavailable(f"the stores failed: {error}; retry with the same event_ids",
                              ) from error
        metrics.EVENTS_TOTAL.labels(outcome="accepted").inc(outcome.accepted)
        metrics.EVENTS_TOTAL.labels(outcome="duplicate").inc(outcome.duplicates)
        metrics.EVENTS_TOTAL.labels(outcome="rejected").inc(len(outcome.rejections))
        for lag in outcome.lag_seconds:
            metrics.INGESTION_LAG.observe(lag)
        return record_events_response(outcome)
