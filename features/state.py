"""Durable event log per customer, deduplicated on event_id: SQLite embedded, Redis in production."""

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from features.events import Event, from_mapping

T = TypeVar("T")


def _encode(event: Event) -> str:
    return event.to_json()


def _decode(payload: str) -> Event:
    # Stored events were validated on the way in; `now=inf` skips the future-time check on replay.
    return from_mapping(json.loads(payload), now=float("inf"))


class EventLog(Protocol):
    """Where recorded events live; `add` tells which events were new."""

    def add(self, events: list[Event]) -> list[bool]:
        """Stores events not seen before; one flag per event, True when it was new."""
        ...

    def history(self, customer_id: str) -> list[Event]:
        """All stored events of a customer."""
        ...

    def all_events(self) -> Iterator[Event]:
        """Every stored event (for rebuilding the offline history)."""
        ...


class SqliteEventLog:
    """Event log in a SQLite file beside the SQLite online store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, "
                "customer_id TEXT NOT NULL, occurred_at REAL NOT NULL, payload TEXT NOT NULL)")
            self._conn.execute(
                "CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id)")

    def add(self, events: list[Event]) -> list[bool]:
        flags = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for event in events:
                    cursor = self._conn.execute(
                        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                        (event.event_id, event.customer_id, event.occurred_at, _encode(event)))
                    flags.append(cursor.rowcount == 1)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return flags

    def history(self, customer_id: str) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT payload FROM events WHERE customer_id = ?", (customer_id,)).fetchall()
        return [_decode(payload) for (payload,) in rows]

    def all_events(self) -> Iterator[Event]:
        with self._lock:
            rows = self._conn.execute("SELECT payload FROM events").fetchall()
        return (_decode(payload) for (payload,) in rows)

    def close(self) -> None:
        """Closes the database connection."""
        self._conn.close()


# Marks the id and appends the event in one step, so a crash cannot split the two.
_ADD_IF_NEW = """
if redis.call('SET', KEYS[1], '1', 'NX') then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


class RedisEventLog:
    """Event log in Redis beside the Redis online store: a seen-set key per event id and a list
    of events per customer."""

    def __init__(self, client: redis.Redis, prefix: str = "effort") -> None:
        self._client = client
        self._prefix = prefix
        self._add_if_new = client.register_script(_ADD_IF_NEW)

    def _keys(self, event: Event) -> list[str]:
        return [f"{self._prefix}:event:{event.event_id}",
                f"{self._prefix}:events:{event.customer_id}"]

    def add(self, events: list[Event]) -> list[bool]:
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            self._add_if_new(keys=self._keys(event), args=[_encode(event)], client=pipe)
        return [bool(flag) for flag in pipe.execute()]

    def history(self, customer_id: str) -> list[Event]:
        payloads = self._client.lrange(f"{self._prefix}:events:{customer_id}", 0, -1)
        return [_decode(p.decode() if isinstance(p, bytes) else p) for p in payloads]  # type: ignore[union-attr]

    def all_events(self) -> Iterator[Event]:
        for key in self._client.scan_iter(match=f"{self._prefix}:events:*", count=1000):
            customer_id = (key.decode() if isinstance(key, bytes) else key).rsplit(":", 1)[1]
            yield from self.history(customer_id)

    def close(self) -> None:
        """Closes the Redis connection pool."""
        self._client.close()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def open_event_log(online_store: str, repo_path: Path, redis_address: str) -> EventLog:
    """The event log next to the online store: data/events.db for SQLite, the same Redis."""
    if online_store == "redis":
        host, _, port = redis_address.partition(",")[0].partition(":")
        return RedisEventLog(redis.Redis(host=host or "localhost", port=int(port or 6379)))
    return SqliteEventLog(repo_path / "data" / "events.db")
