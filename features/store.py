"""Opens Effort's Feast feature store for the chosen online store and applies its definitions."""

import os
from pathlib import Path
from typing import Literal

from feast import FeatureStore

from features.feast_repo.definitions import FEAST_OBJECTS
from features.rows import ensure_history

FEATURE_REPO = Path(__file__).resolve().parent / "feast_repo"
OnlineStoreKind = Literal["sqlite", "redis"]


def store_yaml(online_store: OnlineStoreKind) -> Path:
    """The feature_store.yaml of an online store kind."""
    name = "feature_store.yaml" if online_store == "sqlite" else "feature_store.redis.yaml"
    return FEATURE_REPO / name


def open_store(repo_path: Path, online_store: OnlineStoreKind = "sqlite",
               redis_address: str = "localhost:6379") -> FeatureStore:
    """A FeatureStore whose registry, SQLite file and offline Parquet live under repo_path/data."""
    (repo_path / "data").mkdir(parents=True, exist_ok=True)
    # The Redis YAML reads its address from the environment, as the feast CLI would.
    os.environ["EFFORT_REDIS_ADDRESS"] = redis_address
    return FeatureStore(repo_path=str(repo_path), fs_yaml_file=store_yaml(online_store))


def apply_definitions(store: FeatureStore) -> None:
    """Registers the entity, sources, view and feature service (what `feast apply` does)."""
    ensure_history(Path(store.repo_path))
    store.apply(FEAST_OBJECTS)  # type: ignore[arg-type]
