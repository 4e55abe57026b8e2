import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelSummary
    def __init__(self, model: _Optional[_Union[ModelSummary, _Mapping]] = ...) -> None: ...

class ReloadModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelResponse(_message.Message):
    __slots__ = ("outcome", "current_version", "model", "refusal")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[ReloadModelResponse.Outcome]
        OUTCOME_UNCHANGED: _ClassVar[ReloadModelResponse.Outcome]
        OUTCOME_SWAPPED: _ClassVar[ReloadModelResponse.Outcome]
        OUTCOME_REFUSED: _ClassVar[ReloadModelResponse.Outcome]
    OUTCOME_UNSPECIFIED: ReloadModelResponse.Outcome
    OUTCOME_UNCHANGED: ReloadModelResponse.Outcome
    OUTCOME_SWAPPED: ReloadModelResponse.Outcome
    OUTCOME_REFUSED: ReloadModelResponse.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    outcome: ReloadModelResponse.Outcome
    current_version: str
    model: ModelSummary
    refusal: str
    def __init__(self, outcome: _Optional[_Union[ReloadModelResponse.Outcome, str]] = ..., current_version: _Optional[str] = ..., model: _Optional[_Union[ModelSummary, _Mapping]] = ..., refusal: _Optional[str] = ...) -> None: ...

class ModelSummary(_message.Message):
    __slots__ = ("version", "trained_at", "loaded_at", "feature_service", "feature_count", "synthetic_data", "senior_share_target", "effort_score_threshold", "churn_risk_threshold", "test_metrics", "code_commit")
    class TestMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_DATA_FIELD_NUMBER: _ClassVar[int]
    SENIOR_SHARE_TARGET_FIELD_NUMBER: _ClassVar[int]
    EFFORT_SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    CODE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    version: str
    trained_at: _timestamp_pb2.Timestamp
    loaded_at: _timestamp_pb2.Timestamp
    feature_service: str
    feature_count: int
    synthetic_data: bool
    senior_share_target: float
    effort_score_threshold: float
    churn_risk_threshold: float
    test_metrics: _containers.ScalarMap[str, float]
    code_commit: str
    def __init__(self, version: _Optional[str] = ..., trained_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feature_service: _Optional[str] = ..., feature_count: _Optional[int] = ..., synthetic_data: _Optional[bool] = ..., senior_share_target: _Optional[float] = ..., effort_score_threshold: _Optional[float] = ..., churn_risk_threshold: _Optional[float] = ..., test_metrics: _Optional[_Mapping[str, float]] = ..., code_commit: _Optional[str] = ...) -> None: ...
