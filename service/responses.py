"""Domain results to proto responses: a ScoreResult to a ScoreResponse, a RecordOutcome to its reply."""

from effort.v1 import journey_service_pb2 as journey_pb
from effort.v1 import scoring_service_pb2 as scoring_pb
from features.recorder import RecordOutcome
from service.reasons import ScoreKind
from service.scorer import ScoreResult

_KIND = {ScoreKind.EFFORT: scoring_pb.SCORE_KIND_EFFORT, ScoreKind.CHURN: scoring_pb.SCORE_KIND_CHURN,
         ScoreKind.ROUTING_RULE: scoring_pb.SCORE_KIND_ROUTING_RULE}


def score_response(result: ScoreResult) -> scoring_pb.ScoreResponse:
    """The ScoreResponse of one scored customer."""
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


def record_events_response(outcome: RecordOutcome) -> journey_pb.RecordEventsResponse:
    """The RecordEventsResponse of one recorded batch."""
    return journey_pb.RecordEventsResponse(
        accepted=outcome.accepted, duplicates=outcome.duplicates,
        rejected=len(outcome.rejections),
        rejected_events=[journey_pb.RejectedEvent(index=r.index, field=r.field, reason=r.reason)
                         for r in outcome.rejections])
