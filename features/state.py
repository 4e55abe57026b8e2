"""Durable aggregation state beside the online store: a dedupe ledger and per-customer windows.

SQLite (embedded) and Redis (production) hold the same things:
- a ledger of seen event_ids with a fingerprint of each event's content (Event.fingerprint), kept
  for DEDUPE_HORIZON_DAYS, so a restart or a replayed file never counts an event twice, and an
  event_id reused with other content is refused as a conflict rather than dropped as a duplicate;
- each customer's compacted window state (features/window_state.py), bounded in size;
- a generation counter per customer and the last generation pushed to Feast: a customer whose
  state is newer than its push is pending, so a crash between the two is repaired by the next flush;
- a load marker: when the stores were last loaded with a whole history. A store that answers
  without it has lost its data (for example a Redis restarted empty), which servers flag.
Adding events and bumping the generation happen in one transaction.
"""

import re
import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from features.catalog import STATE_NAME
from features.domain import DAY
from features.events import Event
from features.window_state import compact, decode, encode

DEDUPE_HORIZON_DAYS = 400
# What a ledger written before fingerprints holds for an event_id (Redis: "1", SQLite: NULL); such
# an entry matches any content, as presence alone was all it recorded.
_NO_FINGERPRINT = (None, "1")


class Recorded(Enum):
    """What adding one event did."""

    ACCEPTED = "accepted"  # new: counted in its customer's window
    DUPLICATE = "duplicate"  # its event_id was recorded before with the same content
    CONFLICT = "conflict"  # its event_id was recorded before with other content; not recorded


@dataclass(frozen=True)
class PendingCustomer:
    """A customer whose state changed since its last push."""

    customer_id: str
    events: list[Event]
    generation: int
    # Time of the last row pushed for this customer: the next row must be strictly later,
    # because Feast's Redis store ignores a row that is not newer than the stored one.
    last_row_time: float


class JourneyState(Protocol):
    """Where aggregation state lives."""

    def add(self, events: list[Event], now: float) -> list[Recorded]:
        """Records events not seen before into their customers' windows; the outcome per event."""
        ...

    def pending(self, limit: int) -> list[PendingCustomer]:
        """Up to `limit` customers whose state is newer than their last push."""
        ...

    def mark_pushed(self, pushed: list[tuple[PendingCustomer, float]]) -> None:
        """Records that these generations reached the feature store, with their row times."""
        ...

    def mark_loaded(self, loaded_at: float) -> None:
        """Writes the load marker: the stores now hold a whole history, loaded at `loaded_at`."""
        ...

    def loaded_at(self) -> float | None:
        """The load marker's time, or None when there is none."""
        ...

    def close(self) -> None:
        """Releases connections."""
        ...


def _dedupe_batch(events: list[Event]) -> tuple[list[str], dict[str, list[tuple[Event, str]]]]:
    """Each event's fingerprint, and the first occurrence of each event_id (with its fingerprint)
    grouped by customer."""
    fingerprints = [e.fingerprint() for e in events]
    seen: set[str] = set()
    by_customer: dict[str, list[tuple[Event, str]]] = defaultdict(list)
    for event, fingerprint in zip(events, fingerprints, strict=True):
        if event.event_id not in seen:
            seen.add(event.event_id)
            by_customer[event.customer_id].append((event, fingerprint))
    return fingerprints, by_customer


def _replayed(stored: str | None, fingerprint: str) -> Recorded:
    """An event_id the ledger holds already: a duplicate when the content matches, else a conflict."""
    if stored in _NO_FINGERPRINT or stored == fingerprint:
        return Recorded.DUPLICATE
    return Recorded.CONFLICT


def _batch_outcomes(events: list[Event], fingerprints: list[str], inserted: set[str],
                    held: dict[str, str | None]) -> list[Recorded]:
    """Per event: ACCEPTED for the first copy of an event_id this add inserted into the ledger;
    every other copy is compared with the fingerprint the ledger now `held` for its event_id."""
    pending_inserts = set(inserted)
    outcomes = []
    for event, fingerprint in zip(events, fingerprints, strict=True):
        if event.event_id in pending_inserts:
            pending_inserts.remove(event.event_id)
            outcomes.append(Recorded.ACCEPTED)
        else:
            outcomes.append(_replayed(held[event.event_id], fingerprint))
    return outcomes


class SqliteJourneyState:
    """Aggregation state in a SQLite file beside the SQLite online store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                     timeout=30.0)
        self._lock = threading.Lock()
        self._adds = 0
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("BEGIN IMMEDIATE")  # one process at a time adds the column
            self._conn.execute("CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, "
                               "occurred_at REAL NOT NULL, fingerprint TEXT)")
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(seen)")}
            if "fingerprint" not in columns:  # a ledger from before fingerprints
                self._conn.execute("ALTER TABLE seen ADD COLUMN fingerprint TEXT")
            self._conn.execute("COMMIT")
            self._conn.execute("CREATE TABLE IF NOT EXISTS customers (customer_id TEXT PRIMARY "
                               "KEY, state TEXT NOT NULL, generation INTEGER NOT NULL, "
                               "pushed INTEGER NOT NULL DEFAULT 0, row_time REAL NOT NULL DEFAULT 0)")
            self._conn.execute("CREATE INDEX IF NOT EXISTS pending_customers ON customers "
                               "(customer_id) WHERE generation > pushed")
            self._conn.execute("CREATE TABLE IF NOT EXISTS markers (name TEXT PRIMARY KEY, "
                               "value REAL NOT NULL)")

    def add(self, events: list[Event], now: float) -> list[Recorded]:
        fingerprints, by_customer = _dedupe_batch(events)
        inserted: set[str] = set()
        held: dict[str, str | None] = {}
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for customer_id, group in by_customer.items():
                    fresh = []
                    for event, fingerprint in group:
                        cursor = self._conn.execute(
                            "INSERT OR IGNORE INTO seen (event_id, occurred_at, fingerprint) "
                            "VALUES (?, ?, ?)", (event.event_id, event.occurred_at, fingerprint))
                        if cursor.rowcount == 1:
                            fresh.append(event)
                            inserted.add(event.event_id)
                            held[event.event_id] = fingerprint
                        else:
                            held[event.event_id] = self._conn.execute(
                                "SELECT fingerprint FROM seen WHERE event_id = ?",
                                (event.event_id,)).fetchone()[0]
                    if fresh:
                        self._merge(customer_id, fresh, now)
                self._adds += 1
                if self._adds % 200 == 0:
                    self._conn.execute("DELETE FROM seen WHERE occurred_at < ?",
                                       (now - DEDUPE_HORIZON_DAYS * DAY,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return _batch_outcomes(events, fingerprints, inserted, held)

    def _merge(self, customer_id: str, fresh: list[Event], now: float) -> None:
        row = self._conn.execute("SELECT state, generation FROM customers WHERE customer_id = ?",
                                 (customer_id,)).fetchone()
        state, generation = (row[0], row[1]) if row else ("", 0)
        merged = encode(compact([*decode(state, customer_id), *fresh], now))
        self._conn.execute(
            "INSERT INTO customers (customer_id, state, generation) VALUES (?, ?, ?) "
            "ON CONFLICT(customer_id) DO UPDATE SET state = excluded.state, "
            "generation = excluded.generation", (customer_id, merged, generation + 1))

    def pending(self, limit: int) -> list[PendingCustomer]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT customer_id, state, generation, row_time FROM customers "
                "WHERE generation > pushed LIMIT ?", (limit,)).fetchall()
        return [PendingCustomer(cid, decode(state, cid), gen, row_time)
                for cid, state, gen, row_time in rows]

    def mark_pushed(self, pushed: list[tuple[PendingCustomer, float]]) -> None:
        with self._lock:
            self._conn.executemany(
                "UPDATE customers SET pushed = MAX(pushed, ?), row_time = MAX(row_time, ?) "
                "WHERE customer_id = ?",
                [(p.generation, row_time, p.customer_id) for p, row_time in pushed])

    def mark_loaded(self, loaded_at: float) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO markers (name, value) VALUES ('loaded', ?) ON "
                               "CONFLICT(name) DO UPDATE SET value = excluded.value", (loaded_at,))

    def loaded_at(self) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM markers WHERE name = 'loaded'").fetchone()
        return float(row[0]) if row else None

    def close(self) -> None:
        self._conn.close()


# Records a push unless a newer generation arrived meanwhile; the customer stays pending then.
_MARK_PUSHED = """
local generation = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
local pushed = math.max(tonumber(redis.call('HGET', KEYS[1], 'pushed') or '0'), tonumber(ARGV[1]))
local row_time = math.max(tonumber(redis.call('HGET', KEYS[1], 'row_time') or '0'), tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'pushed', pushed, 'row_time', string.format('%.6f', row_time))
if pushed >= generation then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
"""


class RedisJourneyState:
    """Aggregation state in Redis beside the Redis online store; safe across replicas."""

    def __init__(self, client: redis.Redis, prefix: str = "effort") -> None:
        self._client = client
        self._prefix = prefix
        self._pending_key = f"{prefix}:pending"
        self._loaded_key = f"{prefix}:loaded"
        self._mark_pushed = client.register_script(_MARK_PUSHED)

    def _state_key(self, customer_id: str) -> str:
        return f"{self._prefix}:state:{customer_id}"

    def _seen_key(self, event_id: str) -> str:
        return f"{self._prefix}:seen:{event_id}"

    def add(self, events: list[Event], now: float) -> list[Recorded]:
        fingerprints, by_customer = _dedupe_batch(events)
        inserted: set[str] = set()
        held: dict[str, str | None] = {}
        for customer_id, group in by_customer.items():
            inserted.update(self._add_customer(customer_id, group, held, now))
        return _batch_outcomes(events, fingerprints, inserted, held)

    def _add_customer(self, customer_id: str, group: list[tuple[Event, str]],
                      held: dict[str, str | None], now: float) -> list[str]:
        """Adds one customer's new events; returns their ids and fills `held` with the
        fingerprint the ledger holds for each event_id of the group."""
        state_key = self._state_key(customer_id)
        seen_keys = [self._seen_key(e.event_id) for e, _ in group]
        with self._client.pipeline() as pipe:
            while True:
                try:
                    # Optimistic transaction: retried if another writer touches these keys.
                    pipe.watch(state_key, *seen_keys)
                    stored = cast(list[Any], pipe.mget(seen_keys))
                    held.update({e.event_id: f if value is None else _text(value)
                                 for (e, f), value in zip(group, stored, strict=True)})
                    fresh = [pair for pair, value in zip(group, stored, strict=True)
                             if value is None]
                    if not fresh:
                        pipe.unwatch()
                        return []
                    state, generation = cast(list[Any], pipe.hmget(state_key, ["state", "generation"]))
                    merged = encode(compact(
                        [*decode(_text(state), customer_id), *(e for e, _ in fresh)], now))
                    pipe.multi()
                    for event, fingerprint in fresh:
                        ttl = max(1, int(event.occurred_at + DEDUPE_HORIZON_DAYS * DAY - now))
                        pipe.set(self._seen_key(event.event_id), fingerprint, ex=ttl)
                    pipe.hset(state_key, mapping={"state": merged,
                                                  "generation": int(generation or 0) + 1})
                    pipe.sadd(self._pending_key, customer_id)
                    pipe.execute()
                    return [e.event_id for e, _ in fresh]
                except redis.WatchError:
                    continue

    def pending(self, limit: int) -> list[PendingCustomer]:
        members = cast(list[Any], self._client.srandmember(self._pending_key, limit) or [])
        customer_ids = [_text(c) for c in members]
        pipe = self._client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.hmget(self._state_key(customer_id), ["state", "generation", "row_time"])
        return [PendingCustomer(cid, decode(_text(state), cid), int(generation or 0),
                                float(row_time or 0))
                for cid, (state, generation, row_time)
                in zip(customer_ids, pipe.execute(), strict=True)]

    def mark_pushed(self, pushed: list[tuple[PendingCustomer, float]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for p, row_time in pushed:
            self._mark_pushed(keys=[self._state_key(p.customer_id), self._pending_key],
                              args=[p.generation, p.customer_id, f"{row_time:.6f}"], client=pipe)
        pipe.execute()

    def mark_loaded(self, loaded_at: float) -> None:
        self._client.set(self._loaded_key, repr(loaded_at))

    def loaded_at(self) -> float | None:
        value = self._client.get(self._loaded_key)
        return None if value is None else float(_text(value))

    def close(self) -> None:
        self._client.close()


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def state_path(repo_path: Path) -> Path:
    """The SQLite aggregation state of the current feature set under a Feast repo path."""
    return repo_path / "data" / f"{STATE_NAME}.db"


REDIS_URL_SCHEMES = ("redis://", "rediss://")
# Query parameters of EFFORT_REDIS_URL, besides db, that both Redis clients (this journey state
# and Feast's online store) are given alike: TLS files and checks, with rediss:// only. Socket
# timeouts are not among them: they come from EFFORT_STORE_TIMEOUT_SECONDS.
REDIS_URL_TLS_PARAMETERS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile",
                            "ssl_keyfile", "ssl_check_hostname")


class RedisUrlError(ValueError):
    """An EFFORT_REDIS_URL that Effort cannot give to both of its Redis clients alike; the
    message is one line and never repeats the URL (it may hold a password)."""


def parse_redis_url(url: str) -> dict[str, Any]:
    """redis-py's own reading of a redis:// or rediss:// URL (`redis.connection.parse_url`):
    host, port, db, username, password (percent-decoded), connection_class SSLConnection for
    rediss://, and the TLS query parameters of REDIS_URL_TLS_PARAMETERS.

    Refuses (RedisUrlError) another scheme; a path that is not a database number (redis-py would
    silently use database 0); query parameters other than db and the TLS ones, and TLS ones
    without rediss://; a host Feast's connection string cannot carry (an IPv6 literal: Feast
    splits host:port at every ':')."""
    if not url.startswith(REDIS_URL_SCHEMES):
        scheme = url.partition("://")[0] if "://" in url else ""
        shown = f"{scheme}://" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else None
        raise RedisUrlError("EFFORT_REDIS_URL must start with redis:// or rediss:// "
                            "(e.g. redis://:password@host:6379/0), not "
                            + (shown or "a URL without a scheme"))
    try:
        parts = urlsplit(url)
        options = parse_url(url)
    except ValueError as error:  # a bad port or db: redis-py's and urllib's messages name no secret
        raise RedisUrlError(f"EFFORT_REDIS_URL: {error}") from None
    names = set(parse_qs(parts.query))
    unknown = sorted(names - {"db", *REDIS_URL_TLS_PARAMETERS})
    if unknown:
        raise RedisUrlError(f"EFFORT_REDIS_URL: query parameter {unknown[0]} is not supported "
                            f"(only db and, with rediss://, {', '.join(REDIS_URL_TLS_PARAMETERS)})")
    tls = sorted(names & set(REDIS_URL_TLS_PARAMETERS))
    if tls and parts.scheme != "rediss":
        raise RedisUrlError(f"EFFORT_REDIS_URL: {tls[0]} needs a rediss:// (TLS) URL")
    database = unquote(parts.path).replace("/", "")
    if database and "db" not in names and not database.isdigit():
        raise RedisUrlError("EFFORT_REDIS_URL: the path must be a database number, as in "
                            "redis://host:6379/3")
    host = str(options.get("host", ""))
    if any(c in host for c in ":,="):
        raise RedisUrlError(f"EFFORT_REDIS_URL: host {host} cannot go into Feast's Redis "
                            "connection string (IPv6 literals, commas and '=' cannot); use a "
                            "host name")
    return options


def redis_client_bounds(timeout_seconds: float | None) -> dict[str, Any]:
    """The timeout and retry keywords of Effort's Redis clients.

    With `timeout_seconds`, every command gives up after that long, without retrying. Without,
    redis.Redis's own default retry (3 times with back-off), which `Redis.from_url` leaves out:
    its connections would otherwise not retry at all."""
    if timeout_seconds is None:
        return {"retry": Retry(ExponentialWithJitterBackoff(base=1, cap=10), 3)}
    return {"socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds,
            "retry": Retry(NoBackoff(), 0)}


def open_state(online_store: str, repo_path: Path, redis_url: str,
               timeout_seconds: float | None = None) -> JourneyState:
    """The aggregation state next to the online store: data/<STATE_NAME>.db or the same Redis,
    at `redis_url` (redis:// or rediss://, with password and db; see parse_redis_url).

    With `timeout_seconds`, every Redis command gives up after that long, without retrying, so
    that a hung Redis fails a write in bounded time instead of holding it (and its lock)."""
    if online_store == "redis":
        parse_redis_url(redis_url)  # refuses what Feast's store could not be given alike
        client = redis.Redis.from_url(redis_url, **redis_client_bounds(timeout_seconds))
        return RedisJourneyState(client, prefix=f"effort:{STATE_NAME}")
    return SqliteJourneyState(state_path(repo_path))
