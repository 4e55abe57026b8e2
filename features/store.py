"""Opens Effort's Feast feature store for the chosen online store and applies its definitions."""

import json
from pathlib import Path
from typing import Literal

import yaml
from feast import FeatureStore, RepoConfig
from redis.backoff import NoBackoff
from redis.connection import SSLConnection
from redis.retry import Retry

from features.feast_repo.definitions import FEAST_OBJECTS
from features.locations import FEATURE_REPO
from features.rows import ensure_history
from features.state import REDIS_URL_TLS_PARAMETERS, parse_redis_url

OnlineStoreKind = Literal["sqlite", "redis"]


def store_yaml(online_store: OnlineStoreKind) -> Path:
    """The feature_store.yaml of an online store kind."""
    name = "feature_store.yaml" if online_store == "sqlite" else "feature_store.redis.yaml"
    return FEATURE_REPO / name


def feast_connection_string(redis_url: str) -> str:
    """Feast's RedisOnlineStore `connection_string` for a redis:// or rediss:// URL, read by
    redis-py (features/state.py: parse_redis_url, which refuses what Feast could not take).

    Feast splits the string at commas: `host:port`, then `name=value` parameters, each value
    JSON-decoded when it can be and passed to redis.Redis as a keyword: db, username, password,
    ssl=true for rediss:// and the TLS query parameters. Values are therefore written as JSON,
    strings with their commas escaped (\\u002c), so that any password (`a,b=c`, `true`, `123`)
    reaches redis-py as the same string."""
    options = parse_redis_url(redis_url)
    params: dict[str, object] = {"db": options.get("db", 0)}
    for name in ("username", "password"):
        if name in options:
            params[name] = options[name]
    if options.get("connection_class") is SSLConnection:
        params["ssl"] = True
    for name in REDIS_URL_TLS_PARAMETERS:
        if name in options:
            params[name] = options[name]
    address = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
    return ",".join([address, *(f"{name}={_feast_value(value)}"
                                for name, value in params.items())])


def _feast_value(value: object) -> str:
    """JSON that Feast's json.loads turns back into `value`, with no comma for Feast to split at."""
    return json.dumps(value).replace(",", "\\u002c")


def open_store(repo_path: Path, online_store: OnlineStoreKind = "sqlite",
               redis_url: str = "redis://localhost:6379/0",
               timeout_seconds: float | None = None) -> FeatureStore:
    """A FeatureStore whose registry, SQLite file and offline Parquet live under repo_path/data;
    with the Redis online store, the one at `redis_url` (see feast_connection_string).

    With `timeout_seconds`, each command of Feast's Redis client gives up after that long,
    without retrying (redis-py retries three times with back-off by default), so that a dead or
    hung Redis fails a push in bounded time."""
    (repo_path / "data").mkdir(parents=True, exist_ok=True)
    if online_store == "sqlite":
        return FeatureStore(repo_path=str(repo_path), fs_yaml_file=store_yaml(online_store))
    connection = feast_connection_string(redis_url)
    if timeout_seconds is not None:
        connection += f",socket_timeout={timeout_seconds},socket_connect_timeout={timeout_seconds}"
    # The YAML is read as Feast reads it, but the connection string is set here rather than
    # through ${...} in its text: Feast expands variables before parsing the YAML, so a password
    # with YAML syntax in it (`: `, ` #`, quotes) would change what the file says.
    raw = yaml.safe_load(store_yaml(online_store).read_text())
    raw["online_store"]["connection_string"] = connection
    config = RepoConfig(**raw)
    config.repo_path = repo_path
    store = FeatureStore(repo_path=str(repo_path), config=config)
    if timeout_seconds is not None:
        online = store._get_provider().online_store
        online._get_client(store.config.online_store).set_retry(  # type: ignore[attr-defined]
            Retry(NoBackoff(), 0))
    return store


def apply_definitions(store: FeatureStore) -> None:
    """Registers the entity, sources, view and feature service (what `feast apply` does)."""
    ensure_history(Path(store.repo_path))
    store.apply(FEAST_OBJECTS)  # type: ignore[arg-type]
