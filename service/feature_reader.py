"""Reads customers' online journey rows (features and window state) through Feast."""

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from feast import FeatureStore

from features.catalog import FEATURE_NAMES, FEATURE_SERVICE_NAME, JOIN_KEY, WINDOW_STATE_FIELD
from features.events import Event
from features.journey import compute_features
from features.window_state import decode


class FeatureStoreUnavailable(RuntimeError):
    """The online store could not be read."""


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
    """Online reads of the versioned feature service, one call for many customers."""

    def __init__(self, store: FeatureStore,
                 store_lock: AbstractContextManager[object] | None = None) -> None:
        self._store = store
        self._lock = store_lock or nullcontext()
        self._service = store.get_feature_service(FEATURE_SERVICE_NAME)

    def read(self, customer_ids: Sequence[str]) -> list[FeatureRow | None]:
        """Rows in request order; None for customers the store has nothing for."""
        try:
            with self._lock:
                response = self._store.get_online_features(
                    features=self._service,
                    entity_rows=[{JOIN_KEY: customer_id} for customer_id in customer_ids],
                ).to_dict(include_event_timestamps=True)
        except Exception as error:  # any store failure degrades the answer, never fails it
            raise FeatureStoreUnavailable(f"{type(error).__name__}: {error}") from error
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
