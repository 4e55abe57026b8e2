import datetime

from effort.v1 import channel_pb2 as _channel_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_STANDARD: _ClassVar[Tier]
    TIER_SENIOR: _ClassVar[Tier]

class ScoreKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_KIND_UNSPECIFIED: _ClassVar[ScoreKind]
    SCORE_KIND_EFFORT: _ClassVar[ScoreKind]
    SCORE_KIND_CHURN: _ClassVar[ScoreKind]
    SCORE_KIND_ROUTING_RULE: _ClassVar[ScoreKind]
TIER_UNSPECIFIED: Tier
TIER_STANDARD: Tier
TIER_SENIOR: Tier
SCORE_KIND_UNSPECIFIED: ScoreKind
SCORE_KIND_EFFORT: ScoreKind
SCORE_KIND_CHURN: ScoreKind
SCORE_KIND_ROUTING_RULE: ScoreKind

class ScoreRequest(_message.Message):
    __slots__ = ("customer_id", "contact_id", "channel", "intent", "queue_wait_seconds", "ivr_steps_so_far", "include_features")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IVR_STEPS_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FEATURES_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    contact_id: str
    channel: _channel_pb2.Channel
    intent: str
    queue_wait_seconds: float
    ivr_steps_so_far: int
    include_features: bool
    def __init__(self, customer_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., intent: _Optional[str] = ..., queue_wait_seconds: _Optional[float] = ..., ivr_steps_so_far: _Optional[int] = ..., include_features: _Optional[bool] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("code", "feature", "description", "contribution", "score_kind")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_KIND_FIELD_NUMBER: _ClassVar[int]
    code: str
    feature: str
    description: str
    contribution: float
    score_kind: ScoreKind
    def __init__(self, code: _Optional[str] = ..., feature: _Optional[str] = ..., description: _Optional[str] = ..., contribution: _Optional[float] = ..., score_kind: _Optional[_Union[ScoreKind, str]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("customer_id", "contact_id", "effort_score", "churn_risk", "tier", "reasons", "model_version", "degraded", "degraded_reason", "feature_age", "features", "customer_known", "churn_horizon_days", "value_at_risk", "next_best_action")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EFFORT_SCORE_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    FEATURE_AGE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_KNOWN_FIELD_NUMBER: _ClassVar[int]
    CHURN_HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    VALUE_AT_RISK_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEST_ACTION_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    contact_id: str
    effort_score: float
    churn_risk: float
    tier: Tier
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    model_version: str
    degraded: bool
    degraded_reason: str
    feature_age: _duration_pb2.Duration
    features: _containers.ScalarMap[str, float]
    customer_known: bool
    churn_horizon_days: int
    value_at_risk: float
    next_best_action: NextBestAction
    def __init__(self, customer_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., effort_score: _Optional[float] = ..., churn_risk: _Optional[float] = ..., tier: _Optional[_Union[Tier, str]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., model_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., feature_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., features: _Optional[_Mapping[str, float]] = ..., customer_known: _Optional[bool] = ..., churn_horizon_days: _Optional[int] = ..., value_at_risk: _Optional[float] = ..., next_best_action: _Optional[_Union[NextBestAction, _Mapping]] = ...) -> None: ...

class NextBestAction(_message.Message):
    __slots__ = ("code", "description", "churn_risk_after", "effort_score_after")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_AFTER_FIELD_NUMBER: _ClassVar[int]
    EFFORT_SCORE_AFTER_FIELD_NUMBER: _ClassVar[int]
    code: str
    description: str
    churn_risk_after: float
    effort_score_after: float
    def __init__(self, code: _Optional[str] = ..., description: _Optional[str] = ..., churn_risk_after: _Optional[float] = ..., effort_score_after: _Optional[float] = ...) -> None: ...

class ScoreBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ScoreRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ScoreRequest, _Mapping]]] = ...) -> None: ...

class ScoreBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[ScoreResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[ScoreResponse, _Mapping]]] = ...) -> None: ...
