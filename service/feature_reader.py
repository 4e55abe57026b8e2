"""Reads customers' online journey rows (features and window state) through Feast."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import pybreaker
from feast import FeatureStore

from features.catalog import FEATURE_NAMES, FEATURE_SERVICE_NAME, JOIN_KEY, WINDOW_STATE_FIELD
from features.events import Event
from features.journey import compute_features
from features.window_state import decode


class FeatureStoreUnavailable(RuntimeError):
    """The online store could not be read; `kind` labels the degraded-answer metric."""

    def __init__(self, message: str, kind: str = "feature_store_unavailable") -> None:
        super().__init__(message)
        self.kind = kind


DEADLINE_MARGIN = 0.003  # seconds kept to score from priors and answer after a late read


@dataclass(frozen=True)
class FeatureRow:
    """One customer's online row: stored values, window events, and when it was pushed."""

    values: dict[str, Any]
    events: list[Event]
    computed_at: float

    def features_at(self, moment: float) -> dict[str, Any]:
        """The journey features at `moment`, recomputed from the window state (read-time windows)."""
        return compute_features(self.events, moment)


class FeastFeatureReader:
    """Online reads of the versioned feature service, one call for many customers.

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
        self._service = store.get_feature_service(FEATURE_SERVICE_NAME)
        self._timeout = timeout_seconds
        self._breaker = pybreaker.CircuitBreaker(fail_max=failures_to_open,
                                                 reset_timeout=open_seconds,
                                                 throw_new_error_on_trip=False)
        # Reads run here so that a hung store call can be abandoned at the deadline.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="feature-read")

    def read(self, customer_ids: Sequence[str],
             time_remaining: float | None = None) -> list[FeatureRow | None]:
        """Rows in request order; None for customers the store has nothing for.

        Raises FeatureStoreUnavailable when the store fails, is late, or the circuit is open.
        """
        budget = self._timeout + 0.001 * len(customer_ids)
        if time_remaining is not None:
            budget = min(budget, max(0.0, time_remaining - DEADLINE_MARGIN))
        try:
            response = self._breaker.call(self._bounded_read, customer_ids, budget)
        except pybreaker.CircuitBreakerError as error:
            raise FeatureStoreUnavailable(f"circuit open after repeated failures ({error})",
                                          "circuit_open") from error
        except FutureTimeout as error:
            raise FeatureStoreUnavailable(f"no answer within {budget * 1000:.0f} ms",
                                          "timeout") from error
        except Exception as error:  # any store failure degrades the answer, never fails it
            raise FeatureStoreUnavailable(f"{type(error).__name__}: {error}") from error
        return self._rows(customer_ids, response)

    def _bounded_read(self, customer_ids: Sequence[str], budget: float) -> dict[str, Any]:
        return self._pool.submit(self._read_now, customer_ids).result(timeout=budget)

    def _read_now(self, customer_ids: Sequence[str]) -> dict[str, Any]:
        with self._lock:
            return self._store.get_online_features(
                features=self._service,
                entity_rows=[{JOIN_KEY: customer_id} for customer_id in customer_ids],
            ).to_dict(include_event_timestamps=True)

    @staticmethod
    def _rows(customer_ids: Sequence[str], response: dict[str, Any]) -> list[FeatureRow | None]:
        rows: list[FeatureRow | None] = []
        for i, customer_id in enumerate(customer_ids):
            computed_at = response[f"{WINDOW_STATE_FIELD}__ts"][i] or 0
            if not computed_at:
                rows.append(None)
                continue
            rows.append(FeatureRow({name: response[name][i] for name in FEATURE_NAMES},
                                   decode(response[WINDOW_STATE_FIELD][i], customer_id),
                                   float(computed_at)))
        return rows
