"""Opens Effort's Feast feature store for the chosen online store and applies its definitions."""

import os
from pathlib import Path
from typing import Literal

from feast import FeatureStore
from redis.backoff import NoBackoff
from redis.retry import Retry

from features.feast_repo.definitions import FEAST_OBJECTS
from features.rows import ensure_history

FEATURE_REPO = Path(__file__).resolve().parent / "feast_repo"
OnlineStoreKind = Literal["sqlite", "redis"]


def store_yaml(online_store: OnlineStoreKind) -> Path:
    """The feature_store.yaml of an online store kind."""
    name = "feature_store.yaml" if online_store == "sqlite" else "feature_store.redis.yaml"
    return FEATURE_REPO / name


def open_store(repo_path: Path, online_store: OnlineStoreKind = "sqlite",
               redis_address: str = "localhost:6379",
               timeout_seconds: float | None = None) -> FeatureStore:
    """A FeatureStore whose registry, SQLite file and offline Parquet live under repo_path/data.

    With `timeout_seconds`, each command of Feast's Redis client gives up after that long,
    without retrying (redis-py retries three times with back-off by default), so that a dead or
    hung Redis fails a push in bounded time."""
    (repo_path / "data").mkdir(parents=True, exist_ok=True)
    address = redis_address
    if timeout_seconds is not None:
        address += f",socket_timeout={timeout_seconds},socket_connect_timeout={timeout_seconds}"
    # The Redis YAML reads its address from the environment, as the feast CLI would.
    os.environ["EFFORT_REDIS_ADDRESS"] = address
    store = FeatureStore(repo_path=str(repo_path), fs_yaml_file=store_yaml(online_store))
    if online_store == "redis" and timeout_seconds is not None:
        online = store._get_provider().online_store
        online._get_client(store.config.online_store).set_retry(  # type: ignore[attr-defined]
            Retry(NoBackoff(), 0))
    return store


def apply_definitions(store: FeatureStore) -> None:
    """Registers the entity, sources, view and feature service (what `feast apply` does)."""
    ensure_history(Path(store.repo_path))
    store.apply(FEAST_OBJECTS)  # type: ignore[arg-type]
