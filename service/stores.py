"""Opens the Feast store and the journey state that settings name, with the lock they need."""

import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from feast import FeatureStore

from features.recorder import JourneyRecorder
from features.state import JourneyState, open_state
from features.store import open_store
from service.settings import Settings


@dataclass(frozen=True)
class Stores:
    """The feature store, the journey state beside it and a recorder writing to both."""

    feature_store: FeatureStore
    state: JourneyState
    recorder: JourneyRecorder
    # Feast's SQLite store shares one connection across threads; Redis clients are thread-safe.
    lock: AbstractContextManager[object]


def open_stores(settings: Settings) -> Stores:
    """The stores of `settings.online_store` under `settings.feature_repo`."""
    store = open_store(settings.feature_repo, settings.online_store, settings.redis_url,
                       settings.store_timeout_seconds)
    lock: AbstractContextManager[object] = (
        threading.Lock() if settings.online_store == "sqlite" else nullcontext())
    state = open_state(settings.online_store, settings.feature_repo, settings.redis_url,
                       settings.store_timeout_seconds)
    return Stores(store, state, JourneyRecorder(store, state, lock), lock)
