"""Records journey events exactly once and pushes the customers' new rows to Feast.

Per batch: validate; add new events to the durable state (deduplicated on event_id, in one
transaction with the customer's window and generation; an event_id reused with other content is
rejected as a conflict); then flush every pending customer:
recompute its row, write it to the online store (Feast push) and append it to the offline history,
and only then mark it pushed. A crash anywhere leaves the customer pending, so the next flush
(the next batch, a replayed file, or the server's start) completes it.
"""

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import redis
from feast import FeatureStore
from feast.data_source import PushMode

from effort.v1 import journey_service_pb2 as journey_pb
from features.catalog import PUSH_SOURCE_NAME
from features.domain import DAY
from features.events import Event, InvalidEvent, from_proto
from features.rows import append_history, feature_record, rows_frame
from features.state import DEDUPE_HORIZON_DAYS, JourneyState, PendingCustomer, Recorded

FLUSH_CHUNK = 2000
EVENT_ID_CONFLICT = ("EVENT_ID_CONFLICT: event_id was already recorded with other content "
                     "(another customer or another value of some field)")


# What a store that is down, hung or full raises; a write that meets one is answered as
# unavailable, and a retry with the same event_ids counts each event once.
STORE_ERRORS = (redis.RedisError, sqlite3.Error, OSError)


class StoreUnavailable(RuntimeError):
    """The journey state or the online store did not take a write in time. Events added before
    the failure stay recorded (and their customers pending), so nothing is lost or counted twice
    when the caller retries."""


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
    # For each accepted event whose row was pushed in this call: seconds from its occurred_at
    # to the end of the push (the freshness of the online row).
    lag_seconds: list[float] = field(default_factory=list)


class JourneyRecorder:
    """Turns incoming events into pushed feature rows; knows nothing of gRPC."""

    def __init__(self, store: FeatureStore, state: JourneyState,
                 store_lock: AbstractContextManager[object] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._state = state
        self._store_lock = store_lock or nullcontext()
        self._clock = clock
        self._write_lock = threading.Lock()  # one add-and-flush at a time in this process

    def record(self, messages: Sequence[journey_pb.JourneyEvent],
               timeout: float | None = None) -> RecordOutcome:
        """Validates and records a batch; valid events are kept even when others are rejected.

        Raises StoreUnavailable when a store fails, or when another write holds them for longer
        than `timeout` seconds."""
        now = self._clock()
        parsed: list[Event | InvalidEvent] = []
        for message in messages:
            try:
                parsed.append(from_proto(message, now))
            except InvalidEvent as error:
                parsed.append(error)
        return self.record_parsed(parsed, now, timeout=timeout)

    def record_parsed(self, parsed: Sequence[Event | InvalidEvent], now: float | None = None,
                      flush: bool = True, timeout: float | None = None) -> RecordOutcome:
        """Records validated events; InvalidEvent entries are counted as rejected. Store
        failures raise StoreUnavailable, as does waiting more than `timeout` for another write."""
        now = self._clock() if now is None else now
        oldest = now - DEDUPE_HORIZON_DAYS * DAY
        outcome = RecordOutcome()
        valid: list[Event] = []
        valid_indexes: list[int] = []
        for index, item in enumerate(parsed):
            if isinstance(item, Event) and item.occurred_at < oldest:
                item = InvalidEvent("occurred_at", f"older than the {DEDUPE_HORIZON_DAYS}-day "
                                    "deduplication horizon")
            if isinstance(item, InvalidEvent):
                outcome.rejections.append(Rejection(index, item.field, item.reason))
            else:
                valid.append(item)
                valid_indexes.append(index)
        if not self._write_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            raise StoreUnavailable(f"another write held the stores for more than {timeout:.1f} s")
        try:
            recorded = self._state.add(valid, now) if valid else []
            if flush:
                self._flush(now)
        except STORE_ERRORS as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        finally:
            self._write_lock.release()
        if flush:
            pushed_at = self._clock()
            outcome.lag_seconds = [pushed_at - event.occurred_at for event, result in zip(
                valid, recorded, strict=True) if result is Recorded.ACCEPTED]
        outcome.accepted = recorded.count(Recorded.ACCEPTED)
        outcome.duplicates = recorded.count(Recorded.DUPLICATE)
        outcome.rejections += [Rejection(index, "event_id", EVENT_ID_CONFLICT)
                               for index, result in zip(valid_indexes, recorded, strict=True)
                               if result is Recorded.CONFLICT]
        outcome.rejections.sort(key=lambda rejection: rejection.index)
        return outcome

    def mark_loaded(self) -> None:
        """Records that the stores now hold a whole history (servers watch for its loss)."""
        self._state.mark_loaded(self._clock())

    def flush(self, progress: Callable[[int], None] | None = None) -> int:
        """Pushes every pending customer; returns how many were pushed."""
        with self._write_lock:
            return self._flush(self._clock(), progress)

    def _flush(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while batch := self._state.pending(FLUSH_CHUNK):
            row_times = self._push(batch, now)
            self._state.mark_pushed(list(zip(batch, row_times, strict=True)))
            total += len(batch)
            if progress:
                progress(len(batch))
        return total

    def _push(self, batch: list[PendingCustomer], now: float) -> list[float]:
        # Each row strictly after the customer's previous one (microsecond rows), so that a
        # skewed clock or a future-dated event can never make Feast keep a stale row.
        row_times = [max(now, p.last_row_time + 2e-6, *(e.occurred_at for e in p.events))
                     for p in batch]
        records = [feature_record(p.customer_id, p.events, t)
                   for p, t in zip(batch, row_times, strict=True)]
        frame = rows_frame(records)
        with self._store_lock:
            self._store.push(PUSH_SOURCE_NAME, frame, to=PushMode.ONLINE)
        # The offline half of ONLINE_AND_OFFLINE, as an appended part instead of a file rewrite.
        append_history(Path(self._store.repo_path), frame)
        return row_times
