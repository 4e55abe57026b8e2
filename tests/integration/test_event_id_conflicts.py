"""The Redis dedupe ledger on a real redis-server: duplicates, conflicts, entries without fingerprints."""

import time
import uuid

import redis

from features.events import ET, Event
from features.state import Recorded, RedisJourneyState

NOW = time.time()


def _contact(event_id: str, customer: str, wait: float | None = None) -> Event:
    return Event(event_id, customer, NOW - 3600.0, ET.EVENT_TYPE_CONTACT, channel=1,
                 wait_seconds=wait)


def test_redis_ledger_tells_duplicates_from_conflicts(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"conflicts:{uuid.uuid4().hex[:8]}"
    state = RedisJourneyState(client, prefix=prefix)
    assert state.add([_contact("A-1", "C000001"), _contact("A-2", "C000001", 5.0)], NOW) == [
        Recorded.ACCEPTED, Recorded.ACCEPTED]
    assert state.add([_contact("A-1", "C000002"), _contact("A-2", "C000001", 6.0),
                      _contact("A-2", "C000001", 5.0), _contact("A-3", "C000002"),
                      _contact("A-3", "C000003")], NOW) == [
        Recorded.CONFLICT, Recorded.CONFLICT, Recorded.DUPLICATE, Recorded.ACCEPTED,
        Recorded.CONFLICT]
    # An entry written before fingerprints ("1") matches any content, as presence did before.
    client.set(f"{prefix}:seen:OLD-1", 1)
    assert state.add([_contact("OLD-1", "C000009")], NOW) == [Recorded.DUPLICATE]
    assert client.get(f"{prefix}:seen:OLD-1") == b"1"
    generation = client.hget(f"{prefix}:state:C000002", "generation")
    assert generation == b"1"  # the conflicting copies changed no window
    state.close()
