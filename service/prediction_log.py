"""The prediction log: every answered Score and ScoreBatch row, written off the call path to Parquet.

A call only puts one record (its request id, the time and its ScoreResults, which hold the model
input row the models saw) on a queue bounded by rows; when the queue is full the rows are dropped
and counted, never waited for. One daemon thread turns the records into Arrow columns and writes
a Parquet file every FLUSH_ROWS rows or FLUSH_SECONDS seconds, and at close():

    <folder>/__log_date=YYYY-MM-DD/part-<pid>-<start ns>-<seq>.parquet

each written under a dot-name and renamed into place, so that readers never see half a file and
several processes can share the folder. Columns are named as Feast's feature logging names them
(features/prediction_log_schema.py). pyarrow and pandas skip folders starting with "_" unless
told otherwise: read the folder with features.prediction_log_schema.open_log or `ignore_prefixes=["."]`.
"""

import contextlib
import logging
import os
import queue
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import MODEL_FEATURES
from features.prediction_log_schema import (
    BATCH_INDEX,
    CHALLENGER_CHURN_RISK,
    CHALLENGER_EFFORT_SCORE,
    CHALLENGER_MODEL_VERSION,
    CHALLENGER_SENIOR,
    CHURN_RISK,
    CONTACT_ID,
    CUSTOMER_ID,
    CUSTOMER_KNOWN,
    DEGRADED_REASON,
    EFFORT_SCORE,
    FEATURE_COLUMNS,
    LOG_DATE,
    LOG_TIMESTAMP,
    MODEL_VERSION,
    REASON_CODES,
    REQUEST_ID,
    SCHEMA,
    SENIOR,
)
from service import metrics
from service.scorer import ScoreResult

log = logging.getLogger(__name__)

FLUSH_ROWS = 5_000
# The writer builds a file's table TABLE_PIECE_ROWS answers at a time (about 0.5 ms of Python
# each) and lets the interpreter lock go between pieces, so that the serving loop never waits
# for a whole file's conversion (7-12 ms per 5,000 answers).
TABLE_PIECE_ROWS = 256
FLUSH_SECONDS = 5.0
# About 2-3 KB per queued row (its ScoreResult, reasons and model input): some 50 MB at most, and
# several seconds of a process's peak traffic while a write is slow.
QUEUE_ROWS = 20_000
CLOSE_SECONDS = 30.0
MICROSECONDS_PER_DAY = 86_400 * 1_000_000

def sampled(request_id: str, share: float) -> bool:
    """Whether a call is logged: a stable hash of its request id falls below `share`, so that a
    batch's rows are in or out together and a request id sent again gets the same answer."""
    if share >= 1.0:
        return True
    return zlib.crc32(request_id.encode()) < share * 2**32


class Call(NamedTuple):
    """What a call leaves for the writer: nothing is converted on the call path."""

    request_id: str
    logged_at_us: int  # Unix time in microseconds, when the answer was made
    results: Sequence[ScoreResult]
    first_index: int = 0  # the batch index of results[0] (a piece of a larger call)


def pieces(calls: Sequence[Call], rows: int) -> list[list[Call]]:
    """The calls cut into groups of at most `rows` answers, in order; a call larger than that is
    cut too, each part keeping its answers' batch indexes."""
    groups: list[list[Call]] = [[]]
    room = rows
    for call in calls:
        start = 0
        while start < len(call.results):
            if room == 0:
                groups.append([])
                room = rows
            taken = call.results[start:start + room]
            groups[-1].append(Call(call.request_id, call.logged_at_us, taken,
                                   call.first_index + start))
            start += len(taken)
            room -= len(taken)
    return [group for group in groups if group]


def _weight(item: list[Call] | None) -> int:
    return 1 if item is None else sum(max(1, len(call.results)) for call in item)


class CallQueue(queue.Queue[list[Call] | None]):
    """A queue of lists of calls (handed over together, one wake-up for the taker), bounded by
    rows, not calls: a batch of 10,000 customers weighs 10,000. None (the stop sign) weighs 1."""

    def _init(self, maxsize: int) -> None:
        self.queue: deque[list[Call] | None] = deque()
        self.rows = 0

    def _qsize(self) -> int:
        return self.rows

    def _put(self, item: list[Call] | None) -> None:
        self.queue.append(item)
        self.rows += _weight(item)

    def _get(self) -> list[Call] | None:
        item = self.queue.popleft()
        self.rows -= _weight(item)
        return item


class PredictionLog:
    """Writes the answers of sampled calls to day-partitioned Parquet files under `folder`."""

    def __init__(self, folder: Path, share: float = 1.0, *, flush_rows: int = FLUSH_ROWS,
                 flush_seconds: float = FLUSH_SECONDS, queue_rows: int = QUEUE_ROWS,
                 start: bool = True, clock: Callable[[], int] = time.time_ns) -> None:
        self.folder = folder
        self.share = share
        self._clock = clock  # Unix time in nanoseconds; tests set it to cross days
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._queue = CallQueue(queue_rows)
        self._prefix = f"part-{os.getpid()}-{time.time_ns()}"
        self._sequence = 0
        self._closed = False
        self._errors_logged: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        """Starts the writer thread (the constructor does, unless told not to)."""
        self._thread.start()

    def submit(self, request_id: str, results: Sequence[ScoreResult]) -> None:
        """Queues one call's answers, made now, if the call is sampled; never blocks. When the
        queue is full (or the log closed) they are dropped and counted in
        effort_prediction_log_dropped_total."""
        self.submit_calls([Call(request_id, self._clock() // 1000, results)])

    def submit_calls(self, calls: Sequence[Call]) -> None:
        """Queues the sampled ones of several calls in one item, so the writer wakes once for
        them rather than once per call (the shadow hands over a pass of calls at a time); never
        blocks, and drops them all, counted, when the queue is full or the log closed."""
        kept = [call for call in calls if call.results and sampled(call.request_id, self.share)]
        if not kept:
            return
        if not self._closed:
            try:
                self._queue.put_nowait(kept)
                return
            except queue.Full:
                pass
        metrics.PREDICTION_LOG_DROPPED["queue_full"].inc(sum(len(call.results) for call in kept))

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Writes what is queued and stops the writer; call it once calls have finished."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                log.error("prediction log: the writer did not take the queued rows within "
                          "%.0f s; they are lost", timeout)
                return
            self._thread.join(timeout)
        else:  # never started: write the queue from here
            calls = []
            while True:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is not None:
                    calls.extend(queued)
            self._write(calls)

    def _run(self) -> None:
        calls: list[Call] = []
        rows = 0
        due = 0.0  # when the buffered rows must be written
        while True:
            wait = None if not calls else max(0.0, due - time.monotonic())
            try:
                arrived = self._queue.get(timeout=wait)
            except queue.Empty:
                pass  # the buffered rows are due
            else:
                if arrived is None:
                    self._write(calls)
                    return
                if not calls:
                    due = time.monotonic() + self._flush_seconds
                calls.extend(arrived)
                rows += sum(len(one.results) for one in arrived)
            if calls and (rows >= self._flush_rows or time.monotonic() >= due):
                self._write(calls)
                calls, rows = [], 0

    def _write(self, calls: list[Call]) -> None:
        """One file per day of the calls' answers; a failure drops that file's rows, counted, and
        is logged once per kind of error."""
        by_day: dict[int, list[Call]] = {}
        for call in calls:
            by_day.setdefault(call.logged_at_us // MICROSECONDS_PER_DAY, []).append(call)
        for day, day_calls in sorted(by_day.items()):
            rows = sum(len(call.results) for call in day_calls)
            self._sequence += 1
            folder = self.folder / f"{LOG_DATE}={np.datetime64(day, 'D')}"
            name = f"{self._prefix}-{self._sequence:06d}.parquet"
            staging = folder / f".{name}.tmp"
            try:
                tables = []
                for group in pieces(day_calls, TABLE_PIECE_ROWS):
                    tables.append(log_table(group))
                    time.sleep(0)  # the serving loop may take the interpreter lock here
                table = pa.concat_tables(tables)
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, staging)
                os.replace(staging, folder / name)
            except Exception as error:  # never raised into calls; the next flush tries again
                metrics.PREDICTION_LOG_DROPPED["write_error"].inc(rows)
                with contextlib.suppress(OSError):
                    staging.unlink(missing_ok=True)
                kind = type(error).__name__
                if kind not in self._errors_logged:
                    self._errors_logged.add(kind)
                    log.error("prediction log: a write under %s failed (%s: %s); its rows are "
                              "dropped, and later %s errors only counted", self.folder, kind,
                              error, kind)
                continue
            metrics.PREDICTION_LOG_ROWS.inc(rows)


def log_table(calls: Sequence[Call]) -> pa.Table:
    """The calls' answers as a table of SCHEMA, one row per answer, in call order."""
    results = [result for call in calls for result in call.results]
    sizes = [len(call.results) for call in calls]
    inputs = np.full((len(results), len(MODEL_FEATURES)), np.nan)
    for i, result in enumerate(results):
        if result.model_input is not None:
            inputs[i] = result.model_input
    by_feature = np.ascontiguousarray(inputs.T)
    stamps = np.repeat(np.array([call.logged_at_us for call in calls], dtype=np.int64), sizes)
    columns: dict[str, Any] = {
        CUSTOMER_ID: [r.customer_id for r in results],
        CONTACT_ID: [r.contact_id for r in results],
        BATCH_INDEX: np.concatenate([np.arange(call.first_index, call.first_index + n,
                                               dtype=np.int32)
                                     for call, n in zip(calls, sizes, strict=True)]),
        MODEL_VERSION: [r.model_version for r in results],
        EFFORT_SCORE: np.array([r.effort_score for r in results], dtype=np.float64),
        CHURN_RISK: np.array([r.churn_risk for r in results], dtype=np.float64),
        SENIOR: np.array([r.senior for r in results], dtype=bool),
        REASON_CODES: [[reason.code for reason in r.reasons] for r in results],
        DEGRADED_REASON: [r.degraded_reason for r in results],
        CUSTOMER_KNOWN: np.array([r.customer_known for r in results], dtype=bool),
        LOG_TIMESTAMP: stamps,
        LOG_DATE: (stamps // MICROSECONDS_PER_DAY).astype(np.int32),
        CHALLENGER_MODEL_VERSION: [r.challenger.model_version if r.challenger else None
                                   for r in results],
        CHALLENGER_EFFORT_SCORE: [r.challenger.effort_score if r.challenger else None
                                  for r in results],
        CHALLENGER_CHURN_RISK: [r.challenger.churn_risk if r.challenger else None
                                for r in results],
        CHALLENGER_SENIOR: [r.challenger.senior if r.challenger else None for r in results],
        REQUEST_ID: [call.request_id for call, n in zip(calls, sizes, strict=True)
                     for _ in range(n)],
    }
    for k, name in enumerate(FEATURE_COLUMNS):
        columns[name] = pa.array(by_feature[k], mask=np.isnan(by_feature[k]), type=pa.float64())
    arrays = [columns[field.name] if field.name in columns else pa.nulls(len(results), field.type)
              for field in SCHEMA]
    return pa.Table.from_arrays(
        [a if isinstance(a, pa.Array) else pa.array(a, type=field.type)
         for a, field in zip(arrays, SCHEMA, strict=True)], schema=SCHEMA)
