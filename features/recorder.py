"""Records journey events: validate, deduplicate on event_id, recompute and push feature rows."""

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from feast import FeatureStore
from feast.data_source import PushMode

from features.catalog import JOIN_KEY, PUSH_SOURCE_NAME
from features.definitions import TIMESTAMP_FIELD
from features.events import Event, InvalidEvent, from_proto
from features.journey import compute_features
from features.rows import rows_frame
from features.state import EventLog
from service.api.v1 import journey_service_pb2 as journey_pb


@dataclass
class Rejection:
    """An event that was not recorded: its position, the field at fault and why."""

    index: int
    field: str
    reason: str


@dataclass
class RecordOutcome:
    """Accounting of one batch."""

    accepted: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)


class JourneyRecorder:
    """Turns incoming events into pushed feature rows; knows nothing of gRPC."""

    def __init__(self, store: FeatureStore, log: EventLog,
                 store_lock: AbstractContextManager[object] | None = None) -> None:
        self._store = store
        self._log = log
        self._store_lock = store_lock or nullcontext()
        self._write_lock = threading.Lock()  # one recompute-and-push at a time per process

    def record(self, messages: Sequence[journey_pb.JourneyEvent]) -> RecordOutcome:
        """Validates and records a batch; valid events are kept even when others are rejected."""
        now = time.time()
        parsed: list[Event | InvalidEvent] = []
        for message in messages:
            try:
                parsed.append(from_proto(message, now))
            except InvalidEvent as error:
                parsed.append(error)
        return self.record_parsed(parsed, now)

    def record_parsed(self, parsed: Sequence[Event | InvalidEvent],
                      now: float | None = None) -> RecordOutcome:
        """Records already-validated events; InvalidEvent entries are counted as rejected."""
        now = time.time() if now is None else now
        outcome = RecordOutcome()
        valid: list[Event] = []
        for index, item in enumerate(parsed):
            if isinstance(item, InvalidEvent):
                outcome.rejections.append(Rejection(index, item.field, item.reason))
            else:
                valid.append(item)
        with self._write_lock:
            flags = self._log.add(valid) if valid else []
            new = [event for event, is_new in zip(valid, flags, strict=True) if is_new]
            outcome.accepted = len(new)
            outcome.duplicates = len(valid) - len(new)
            customers = sorted({event.customer_id for event in new})
            if customers:
                self._push(customers, now)
        return outcome

    def _push(self, customers: list[str], now: float) -> None:
        records = []
        for customer_id in customers:
            history = self._log.history(customer_id)
            as_of = max(now, max(e.occurred_at for e in history))
            row = compute_features(history, as_of)
            row[JOIN_KEY] = customer_id
            row[TIMESTAMP_FIELD] = as_of
            records.append(row)
        frame = rows_frame(records)
        with self._store_lock:
            self._store.push(PUSH_SOURCE_NAME, frame, to=PushMode.ONLINE_AND_OFFLINE)
