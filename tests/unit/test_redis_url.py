"""EFFORT_REDIS_URL: read by redis-py, translated to Feast's Redis connection string, refused
with one line when it cannot reach both clients alike. No Redis server is needed."""

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from feast.infra.online_stores.redis import RedisOnlineStore
from redis.connection import SSLConnection

from features.state import RedisJourneyState, RedisUrlError, open_state, parse_redis_url
from features.store import feast_connection_string, open_store
from service.settings import Settings, SettingsError


def _feast_reads(connection_string: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """What Feast's RedisOnlineStore makes of a connection string: its startup nodes and the
    keywords it gives redis.Redis."""
    nodes, params = RedisOnlineStore._parse_connection_string(connection_string)
    return nodes, params


def test_a_plain_url_gives_host_port_and_db() -> None:
    assert feast_connection_string("redis://cache:6380/3") == "cache:6380,db=3"
    assert feast_connection_string("redis://cache") == "cache:6379,db=0"
    assert feast_connection_string("redis://") == "localhost:6379,db=0"
    assert feast_connection_string("redis://cache/?db=5") == "cache:6379,db=5"


def test_rediss_with_password_and_db_reaches_feast_as_redis_py_reads_it() -> None:
    url = "rediss://:s3cret@cache.example:6380/2"
    nodes, params = _feast_reads(feast_connection_string(url))
    assert nodes == [{"host": "cache.example", "port": "6380"}]
    assert params == {"db": 2, "password": "s3cret", "ssl": True}
    assert parse_redis_url(url)["connection_class"] is SSLConnection


@pytest.mark.parametrize("password", ["a,b=c", "true", "123", "null", '1 #x:"y', "p@ss/w%rd",
                                      "\\u002c", "naïve"])
def test_any_password_and_username_arrive_unchanged(password: str) -> None:
    url = f"redis://{quote('us,er', safe='')}:{quote(password, safe='')}@cache:6379/1"
    nodes, params = _feast_reads(feast_connection_string(url))
    assert nodes == [{"host": "cache", "port": "6379"}]
    assert params == {"db": 1, "username": "us,er", "password": password}


def test_tls_parameters_go_to_both_clients() -> None:
    url = "rediss://:pw@cache:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca,1.pem&ssl_check_hostname=false"
    _, params = _feast_reads(feast_connection_string(url))
    assert params == {"db": 0, "password": "pw", "ssl": True, "ssl_cert_reqs": "none",
                      "ssl_ca_certs": "/etc/ca,1.pem", "ssl_check_hostname": False}


@pytest.mark.parametrize(("url", "message"), [
    ("http://:secret@cache:6379/0", "must start with redis:// or rediss://"),
    ("cache:6379", "must start with redis:// or rediss://"),
    ("unix:///run/redis.sock", "must start with redis:// or rediss://"),
    ("redis://:secret@cache:6379/zero", "the path must be a database number"),
    ("redis://:secret@cache:6379/0?socket_timeout=5", "query parameter socket_timeout is not"),
    ("redis://:secret@cache:6379/0?ssl_ca_certs=/ca.pem", "ssl_ca_certs needs a rediss://"),
    ("redis://:secret@[::1]:6379/0", "host ::1 cannot go into Feast's"),
    ("redis://:secret@cache:port/0", "EFFORT_REDIS_URL: Port could not be cast"),
    ("redis://:secret@cache:6379/0?db=x", "Invalid value for 'db'"),
])
def test_urls_that_cannot_reach_both_clients_are_refused_in_one_line(url: str,
                                                                      message: str) -> None:
    with pytest.raises(RedisUrlError, match=message) as refused:
        feast_connection_string(url)
    assert "\n" not in str(refused.value) and "secret" not in str(refused.value)
    with pytest.raises(RedisUrlError, match=message):
        open_state("redis", Path("unused"), url)


def test_settings_refuse_another_scheme_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFORT_REDIS_URL", "localhost:6379")
    with pytest.raises(SettingsError, match=r"^EFFORT_REDIS_URL must start with redis:// or "
                       r"rediss:// \(e\.g\. redis://:password@host:6379/0\)$"):
        Settings()
    monkeypatch.setenv("EFFORT_REDIS_URL", "rediss://:pw@cache:6380/2")
    assert Settings().redis_url == "rediss://:pw@cache:6380/2"


def test_settings_refuse_the_old_address_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFORT_REDIS_ADDRESS", "localhost:6379")
    with pytest.raises(SettingsError, match=r"^EFFORT_REDIS_ADDRESS was replaced by "
                       r"EFFORT_REDIS_URL \(redis://host:port/db\)$"):
        Settings(redis_url="redis://localhost:6379/0")


def _client_options(client: redis.Redis) -> dict[str, Any]:
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    retry = kwargs["retry"]
    return {"connection_class": pool.connection_class, "port": int(kwargs["port"]),
            **{name: kwargs.get(name) for name in (
                "host", "db", "username", "password", "socket_timeout", "socket_connect_timeout")},
            "retries": retry.get_retries(), "backoff": type(retry._backoff)}


@pytest.mark.parametrize("timeout", [1.5, None])
def test_the_state_and_feast_clients_are_configured_alike(tmp_path: Path,
                                                          timeout: float | None) -> None:
    url = "rediss://user:p%2Cw@cache.example:6380/4"
    state = open_state("redis", tmp_path, url, timeout)
    assert isinstance(state, RedisJourneyState)
    ours = _client_options(state._client)
    store = open_store(tmp_path, "redis", url, timeout)
    online = store._get_provider().online_store
    feasts = _client_options(online._get_client(store.config.online_store))  # type: ignore[attr-defined]
    assert ours == feasts
    assert ours["connection_class"] is SSLConnection
    assert (ours["host"], ours["port"], ours["db"]) == ("cache.example", 6380, 4)
    assert (ours["username"], ours["password"]) == ("user", "p,w")
    # With a timeout every command gives up once, without retrying; without, redis-py's default.
    assert (ours["socket_timeout"], ours["socket_connect_timeout"]) == (timeout, timeout)
    assert ours["retries"] == (0 if timeout else 3)
    state.close()
