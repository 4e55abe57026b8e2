import datetime

from effort.v1 import channel_pb2 as _channel_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_CONTACT: _ClassVar[EventType]
    EVENT_TYPE_TRANSFER: _ClassVar[EventType]
    EVENT_TYPE_IVR_STEP: _ClassVar[EventType]
    EVENT_TYPE_IVR_ZERO_OUT: _ClassVar[EventType]
    EVENT_TYPE_ABANDON: _ClassVar[EventType]
    EVENT_TYPE_EMAIL_RECEIVED: _ClassVar[EventType]
    EVENT_TYPE_EMAIL_ANSWERED: _ClassVar[EventType]
    EVENT_TYPE_COMPLAINT_OPENED: _ClassVar[EventType]
    EVENT_TYPE_COMPLAINT_ACKNOWLEDGED: _ClassVar[EventType]
    EVENT_TYPE_COMPLAINT_RESOLVED: _ClassVar[EventType]
    EVENT_TYPE_SELF_SERVICE: _ClassVar[EventType]
    EVENT_TYPE_PROACTIVE_NOTICE: _ClassVar[EventType]
    EVENT_TYPE_SURVEY: _ClassVar[EventType]
    EVENT_TYPE_PROFILE_UPDATE: _ClassVar[EventType]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_CONTACT: EventType
EVENT_TYPE_TRANSFER: EventType
EVENT_TYPE_IVR_STEP: EventType
EVENT_TYPE_IVR_ZERO_OUT: EventType
EVENT_TYPE_ABANDON: EventType
EVENT_TYPE_EMAIL_RECEIVED: EventType
EVENT_TYPE_EMAIL_ANSWERED: EventType
EVENT_TYPE_COMPLAINT_OPENED: EventType
EVENT_TYPE_COMPLAINT_ACKNOWLEDGED: EventType
EVENT_TYPE_COMPLAINT_RESOLVED: EventType
EVENT_TYPE_SELF_SERVICE: EventType
EVENT_TYPE_PROACTIVE_NOTICE: EventType
EVENT_TYPE_SURVEY: EventType
EVENT_TYPE_PROFILE_UPDATE: EventType

class JourneyEvent(_message.Message):
    __slots__ = ("event_id", "customer_id", "occurred_at", "type", "channel", "intent", "wait_seconds", "sentiment", "resolved", "ces", "ivr_menu", "contact_id", "customer_since", "customer_value")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    CES_FIELD_NUMBER: _ClassVar[int]
    IVR_MENU_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_SINCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_VALUE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    customer_id: str
    occurred_at: _timestamp_pb2.Timestamp
    type: EventType
    channel: _channel_pb2.Channel
    intent: str
    wait_seconds: float
    sentiment: float
    resolved: bool
    ces: int
    ivr_menu: str
    contact_id: str
    customer_since: _timestamp_pb2.Timestamp
    customer_value: float
    def __init__(self, event_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[EventType, str]] = ..., channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., intent: _Optional[str] = ..., wait_seconds: _Optional[float] = ..., sentiment: _Optional[float] = ..., resolved: _Optional[bool] = ..., ces: _Optional[int] = ..., ivr_menu: _Optional[str] = ..., contact_id: _Optional[str] = ..., customer_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_value: _Optional[float] = ...) -> None: ...

class RecordEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[JourneyEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[JourneyEvent, _Mapping]]] = ...) -> None: ...

class RejectedEvent(_message.Message):
    __slots__ = ("index", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RecordEventsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected", "rejected_events")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: int
    rejected_events: _containers.RepeatedCompositeFieldContainer[RejectedEvent]
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., rejected_events: _Optional[_Iterable[_Union[RejectedEvent, _Mapping]]] = ...) -> None: ...
