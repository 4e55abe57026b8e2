"""kill -9 inside `effort ingest` or the server's RecordEvents, then replay: each event counted once."""

import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.events import ET, Event
from features.store import apply_definitions, open_store
from service.feature_reader import FeastFeatureReader
from tests.e2e.test_ingest_crash import _ingest, _seen
from tests.faults.served import ServedProcess
from tests.faults.tally import FaultTally, ScenarioRecorder, compare_counts
from tests.helpers import wait_until
from training.simulate import simulate, write_files

# Fractions of the file recorded when the first run, then its first replay, are killed.
KILL_POINTS = (0.25, 0.6)
COUNTS = re.compile(r"([\d,]+) accepted, ([\d,]+) duplicates, ([\d,]+) rejected")


@pytest.mark.slow
def test_ingest_killed_twice_then_replayed_counts_each_event_once(tmp_path: Path,
                                                                  tally: FaultTally) -> None:
    """`effort ingest` is killed at a quarter of the file, its replay at 60%; a last replay
    finishes. Every customer's journey read back from the online store then holds each event
    of the file once: per customer and event type, the counts equal the file's."""
    calls = tally.scenario("kill -9 during effort ingest + replay")
    # 28 days: within the 31-day span the window state keeps whole, so counts compare exactly.
    result = simulate(3000, 28, datetime.now(UTC).replace(microsecond=0), seed=23)
    events_path, _ = write_files(result, tmp_path / "demo")
    repo = tmp_path / "repo"
    apply_definitions(open_store(repo))
    total = len(result.events)
    for fraction in KILL_POINTS:
        run = _ingest(events_path, repo)
        wait_until(lambda: run.poll() is not None or _seen(repo) >= total * fraction,  # noqa: B023
                   120, f"{fraction:.0%} of the file", poll=0.02)
        run.send_signal(signal.SIGKILL)
        assert run.wait(timeout=30) == -signal.SIGKILL, "the kill should land mid-file"
    recorded = _seen(repo)
    assert total * KILL_POINTS[-1] <= recorded < total

    replay = _ingest(events_path, repo)
    output, _ = replay.communicate(timeout=300)
    assert replay.returncode == 0, output
    counts = COUNTS.search(output)
    assert counts, output
    accepted, duplicates, rejected = (int(g.replace(",", "")) for g in counts.groups())
    assert (accepted, duplicates, rejected) == (total - recorded, recorded, 0)
    assert _seen(repo) == total

    customers = sorted({e.customer_id for e in result.events})
    rows = FeastFeatureReader(open_store(repo)).read(customers)
    read_back: Counter[tuple[str, int]] = Counter()
    for customer_id, row in zip(customers, rows, strict=True):
        assert row is not None, customer_id
        read_back.update((customer_id, e.type) for e in row.events)
    counted = compare_counts(Counter((e.customer_id, e.type) for e in result.events), read_back)
    calls.events(counted)
    assert (counted.sent, counted.counted, counted.lost, counted.double_counted) == (
        total, total, 0, 0)
    stored_ids = sorted(e.event_id for row in rows if row is not None for e in row.events)
    assert stored_ids == sorted(e.event_id for e in result.events)


BATCHES, BATCH_SIZE, CUSTOMERS = 60, 100, 300


def _contact_batches(now: float) -> tuple[list[jpb.RecordEventsRequest], Counter[str]]:
    """BATCHES requests of BATCH_SIZE contacts of fresh customers within the last 20 hours, and
    how many contacts each customer gets."""
    run = uuid.uuid4().hex[:6]
    rng = random.Random(41)
    customers = [f"K{run}{n:04d}" for n in range(CUSTOMERS)]
    events = [Event(f"kill-{run}-{n}", rng.choice(customers),
                    now - rng.uniform(60, 20 * 3600), ET.EVENT_TYPE_CONTACT, channel=1,
                    wait_seconds=rng.uniform(0, 300)).to_proto()
              for n in range(BATCHES * BATCH_SIZE)]
    requests = [jpb.RecordEventsRequest(events=events[i:i + BATCH_SIZE])
                for i in range(0, len(events), BATCH_SIZE)]
    return requests, Counter(e.customer_id for e in events)


def _send_all(address: str, calls: ScenarioRecorder, requests: list[jpb.RecordEventsRequest],
              answered: Callable[[jpb.RecordEventsResponse], None]) -> None:
    with grpc.insecure_channel(address) as channel:
        record = jgrpc.JourneyServiceStub(channel).RecordEvents
        for request in requests:
            outcome = calls.call(record, request, timeout=10)
            if isinstance(outcome, jpb.RecordEventsResponse):
                answered(outcome)


@pytest.mark.slow
def test_server_killed_inside_record_events_then_replayed_counts_each_event_once(
        start_served: Callable[..., ServedProcess], tally: FaultTally) -> None:
    """A client streams batches of contacts; the server is killed -9 after a third of them and
    restarted; the client then sends every batch again (at-least-once delivery). Each event is
    accepted exactly once over all answers, and contacts_24h read back through Score equals
    each customer's contacts."""
    calls = tally.scenario("kill -9 of the server inside RecordEvents + replay")
    served = start_served()
    requests, contacts = _contact_batches(time.time())
    answers: list[jpb.RecordEventsResponse] = []
    sender = threading.Thread(target=_send_all, args=(served.address, calls, requests,
                                                      answers.append))
    sender.start()
    wait_until(lambda: len(answers) >= BATCHES // 3, 120, "a third of the batches")
    served.kill()
    sender.join(timeout=120)
    first_pass = list(answers)
    assert BATCHES // 3 <= len(first_pass) < BATCHES, "the kill should land mid-stream"

    served.start()
    answers.clear()
    _send_all(served.address, calls, requests, answers.append)
    assert len(answers) == BATCHES and all(a.rejected == 0 for a in answers)
    total = BATCHES * BATCH_SIZE
    first_accepted = sum(a.accepted for a in first_pass)
    assert first_accepted == len(first_pass) * BATCH_SIZE
    replay_accepted, replay_duplicates = (sum(a.accepted for a in answers),
                                          sum(a.duplicates for a in answers))
    assert replay_accepted + replay_duplicates == total
    # No event accepted before the kill is accepted again; the one call the kill cut short may
    # have stored its events without an answer, and the replay counts those as duplicates too.
    assert first_accepted <= replay_duplicates <= first_accepted + BATCH_SIZE

    with grpc.insecure_channel(served.address) as channel:
        batch = calls.call(sgrpc.ScoringServiceStub(channel).ScoreBatch, spb.ScoreBatchRequest(
            requests=[spb.ScoreRequest(customer_id=c, include_features=True) for c in contacts]),
            timeout=60)
    assert isinstance(batch, spb.ScoreBatchResponse), batch
    read_back = {r.customer_id: int(r.features.get("contacts_24h", 0)) for r in batch.responses}
    assert not any(r.degraded for r in batch.responses)
    counted = compare_counts(contacts, read_back)
    calls.events(counted)
    assert (counted.sent, counted.counted, counted.lost, counted.double_counted) == (
        total, total, 0, 0)
