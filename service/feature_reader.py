"""Reads customers' online journey rows (their window state) through Feast's online store."""

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from circuitbreaker import STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker, CircuitBreakerError
from feast import FeatureStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from features.catalog import FEATURE_VIEW_NAME, JOIN_KEY, WINDOW_STATE_FIELD
from features.events import Event
from features.window_state import decode
from service import metrics

log = logging.getLogger(__name__)


class FeatureStoreUnavailable(RuntimeError):
    """The online store could not be read; `kind` labels the degraded-answer metric."""

    def __init__(self, message: str, kind: str = "feature_store_unavailable") -> None:
        super().__init__(message)
        self.kind = kind


DEADLINE_MARGIN = 0.003  # seconds kept to score from priors and answer after a late read


@dataclass(frozen=True)
class FeatureRow:
    """One customer's online row: the window state's events and when the row was pushed (epoch s).

    Every journey feature is recomputed from the events at the moment of use
    (features/model_input.py), so windows are right at read time.
    """

    events: list[Event]
    computed_at: float
    # Why the stored journey cannot be used (it did not decode), or "": that customer alone
    # gets a degraded answer.
    unusable: str = ""


# A stored row: the encoded window state and when it was pushed (epoch s).
StoredRow = tuple[str | None, float] | None


class FeastFeatureReader:
    """Online reads of the journey view's window state, one call for many customers.

    It reads the one view behind the feature service straight from the online store (Feast's
    provider interface): metadata resolved at start-up, no per-call registry lookups or response
    building. Only `window_state` is asked for: on Redis one hash field instead of 25.

    Reads are bounded in time (the caller's remaining deadline, at most `timeout_seconds` plus a
    millisecond per customer) and go through a circuit breaker: after `failures_to_open` failed
    or late reads in a row, reads fail at once for `open_seconds`, so a dead store costs
    nothing per call. Redis clients retry with back-off for seconds; callers cannot wait that long.
    """

    def __init__(self, store: FeatureStore,
                 store_lock: AbstractContextManager[object] | None = None,
                 timeout_seconds: float = 1.0, failures_to_open: int = 3,
                 open_seconds: float = 5.0) -> None:
        self._store = store
        self._lock = store_lock or nullcontext()
        self._view = store.get_feature_view(FEATURE_VIEW_NAME)
        self._provider = store._get_provider()
        self._timeout = timeout_seconds
        # circuitbreaker rather than pybreaker: pybreaker holds a lock around every guarded call,
        # which serialised all reads on Redis.
        self._breaker = CircuitBreaker(failure_threshold=failures_to_open,
                                       recovery_timeout=open_seconds, name="feature-store")
        self._open_seconds = open_seconds
        self._breaker_state = self._breaker.state  # last state logged
        self._state_lock = threading.Lock()
        # Reads from a network store run here so that a hung call can be abandoned at the deadline.
        self._remote = store.config.online_store.type != "sqlite"
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="feature-read")

    def read(self, customer_ids: Sequence[str],
             time_remaining: float | None = None) -> list[FeatureRow | None]:
        """Rows in request order; None for customers the store has nothing for.

        Raises FeatureStoreUnavailable when the store fails, is late, or the circuit is open.
        """
        budget = self._budget(len(customer_ids), time_remaining)
        with self._guarded(budget):
            stored = self._bounded_read(customer_ids, budget)
        return self._rows(customer_ids, stored)

    async def read_async(self, customer_ids: Sequence[str],
                         time_remaining: float | None = None) -> list[FeatureRow | None]:
        """As `read`, for the event loop: a network store is read with Feast's async client and
        abandoned at the deadline, without a thread; a local SQLite file is read directly."""
        if not self._remote:
            return self.read(customer_ids, time_remaining)
        budget = self._budget(len(customer_ids), time_remaining)
        with self._guarded(budget):
            stored = await asyncio.wait_for(self._read_async_through_provider(customer_ids),
                                            budget)
        return self._rows(customer_ids, stored)

    def _budget(self, count: int, time_remaining: float | None) -> float:
        budget = self._timeout + 0.001 * count
        if time_remaining is not None:
            budget = min(budget, max(0.0, time_remaining - DEADLINE_MARGIN))
        return budget

    @contextmanager
    def _guarded(self, budget: float) -> Iterator[None]:
        """Runs a read under the circuit breaker; every failure becomes FeatureStoreUnavailable.

        Each failed or late read logs one line; reads refused by the open circuit log nothing,
        but every change of the breaker's state does."""
        self._log_breaker_state()  # open -> half-open shows when a read tries the store again
        if self._breaker.opened:  # after open_seconds reads are tried again
            metrics.STORE_ERRORS_TOTAL.labels(kind="circuit_open").inc()
            raise FeatureStoreUnavailable(
                f"circuit open after repeated failures ({CircuitBreakerError(self._breaker)})",
                "circuit_open")
        started = time.perf_counter()
        try:
            with self._breaker:  # counts the failure or resets the count
                yield
        except CircuitBreakerError as error:  # opened by another read since the check above
            metrics.STORE_ERRORS_TOTAL.labels(kind="circuit_open").inc()
            raise FeatureStoreUnavailable(f"circuit open after repeated failures ({error})",
                                          "circuit_open") from error
        except TimeoutError as error:  # concurrent.futures and asyncio raise this one
            metrics.STORE_ERRORS_TOTAL.labels(kind="timeout").inc()
            log.warning("feature store read failed: no answer within %.0f ms", budget * 1000)
            raise FeatureStoreUnavailable(f"no answer within {budget * 1000:.0f} ms",
                                          "timeout") from error
        except Exception as error:  # any store failure degrades the answer, never fails it
            metrics.STORE_ERRORS_TOTAL.labels(kind="unavailable").inc()
            log.warning("feature store read failed: %s: %s", type(error).__name__,
                        str(error).strip().split("\n")[0])
            raise FeatureStoreUnavailable(f"{type(error).__name__}: {error}") from error
        finally:
            metrics.STORE_READ_SECONDS.observe(time.perf_counter() - started)
            self._log_breaker_state()

    def _log_breaker_state(self) -> None:
        """One log line per change of the circuit breaker's state."""
        state = self._breaker.state
        if state == self._breaker_state:
            return
        with self._state_lock:
            previous, self._breaker_state = self._breaker_state, state
        if state == previous:
            return
        metrics.STORE_CIRCUIT_OPEN.set(1 if state == STATE_OPEN else 0)
        if state == STATE_OPEN:
            log.warning("feature store circuit open after %d failed or late reads in a row: "
                        "answering from priors for %.0f s", self._breaker.failure_count,
                        self._open_seconds)
        elif state == STATE_HALF_OPEN:
            log.warning("feature store circuit half-open: trying the store again")
        else:
            log.info("feature store circuit closed: the store answers again")

    def _bounded_read(self, customer_ids: Sequence[str], budget: float) -> list[StoredRow]:
        if not self._remote:  # a local SQLite file cannot hang the way a network store can
            return self._read_now(customer_ids)
        return self._pool.submit(self._read_now, customer_ids).result(timeout=budget)

    def _read_now(self, customer_ids: Sequence[str]) -> list[StoredRow]:
        """One online-store read of the journey view."""
        with self._lock:
            # A new list each call: Feast's Redis store appends its timestamp key to the one given.
            return self._stored_rows(self._provider.online_read(
                self._store.config, self._view, self._entity_keys(customer_ids),
                [WINDOW_STATE_FIELD]))

    async def _read_async_through_provider(self, customer_ids: Sequence[str]) -> list[StoredRow]:
        return self._stored_rows(await self._provider.online_read_async(
            self._store.config, self._view, self._entity_keys(customer_ids), [WINDOW_STATE_FIELD]))

    @staticmethod
    def _entity_keys(customer_ids: Sequence[str]) -> list[EntityKeyProto]:
        return [EntityKeyProto(join_keys=[JOIN_KEY], entity_values=[ValueProto(string_val=c)])
                for c in customer_ids]

    def _stored_rows(self, read: list[tuple[datetime | None, dict[str, ValueProto] | None]],
                     ) -> list[StoredRow]:
        rows: list[StoredRow] = []
        for timestamp, values in read:
            # Redis answers an unknown key with an epoch-0 timestamp and empty values.
            computed_at = timestamp.timestamp() if timestamp is not None else 0.0
            if values is None or computed_at <= 0:
                rows.append(None)
                continue
            rows.append((_python_value(values.get(WINDOW_STATE_FIELD)), computed_at))
        return rows

    @staticmethod
    def _rows(customer_ids: Sequence[str], stored: list[StoredRow]) -> list[FeatureRow | None]:
        rows: list[FeatureRow | None] = []
        for customer_id, row in zip(customer_ids, stored, strict=True):
            if row is None:
                rows.append(None)
                continue
            state, computed_at = row
            try:
                rows.append(FeatureRow(decode(state, customer_id), computed_at))
            except Exception as error:  # one customer's bad bytes must not fail the others
                rows.append(FeatureRow([], computed_at, f"{type(error).__name__} while "
                                                        "decoding its stored journey"))
        return rows


def _python_value(value: ValueProto | None) -> Any:
    """The Python value of a stored scalar; None when it is unset (a missing feature)."""
    if value is None:
        return None
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)
