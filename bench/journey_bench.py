"""Measures journey ingestion rate and event-to-score freshness on the embedded (SQLite) store.

Goals (issue 3): at least 5,000 events/s ingested on 2 cores; p99 at most 50 ms from
RecordEvents returning to a Score that reflects the event. Uses its own temporary store.
"""

import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.batches import chunked
from features.recorder import JourneyRecorder
from features.state import SqliteJourneyState, state_path
from features.store import apply_definitions, open_store
from service.server import create_server
from service.settings import Settings
from training.simulate import simulate


def ingestion_rate(repo: Path, customers: int, batch: int) -> tuple[int, float]:
    """(events, events per second) recording a simulated history in batches, time-ordered."""
    result = simulate(customers, 30, datetime.now(UTC), seed=3)
    events = sorted(result.events, key=lambda e: e.occurred_at)
    store = open_store(repo)
    apply_definitions(store)
    recorder = JourneyRecorder(store, SqliteJourneyState(state_path(repo)))
    recorder.record_parsed(events[:1])  # warm-up: Feast loads its provider on the first push
    events = events[1:]
    started = time.perf_counter()
    for chunk in chunked(events, batch):
        recorder.record_parsed(chunk)
    return len(events), len(events) / (time.perf_counter() - started)


def freshness(repo: Path, models_dir: Path, rounds: int) -> list[float]:
    """Milliseconds from RecordEvents returning to a Score whose features include the event."""
    running = create_server(Settings(grpc_host="127.0.0.1", grpc_port=0, feature_repo=repo,
                                     models_dir=models_dir))
    delays = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            journey, scoring = jgrpc.JourneyServiceStub(channel), sgrpc.ScoringServiceStub(channel)
            customer = f"F{uuid.uuid4().hex[:8]}"
            for n in range(1, rounds + 1):
                event = jpb.JourneyEvent(event_id=f"{customer}-{n}", customer_id=customer,
                                         type=jpb.EVENT_TYPE_CONTACT, channel=1)  # type: ignore[arg-type]
                event.occurred_at.GetCurrentTime()
                journey.RecordEvents(jpb.RecordEventsRequest(events=[event]), timeout=5)
                returned = time.perf_counter()
                while True:
                    features = scoring.Score(spb.ScoreRequest(customer_id=customer,
                                                              include_features=True),
                                             timeout=5).features
                    if features.get("contacts_24h", 0) >= min(n, 10_000):
                        break
                delays.append((time.perf_counter() - returned) * 1000)
    finally:
        running.stop(grace=1.0)
    return delays


def main() -> None:
    models_dir = Path("var/models")
    if not (models_dir / "CURRENT").is_file():
        raise SystemExit("no demo model: run `make demo` first")
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        count, rate = ingestion_rate(repo / "a", 3000, 1000)
        _, rate_5000 = ingestion_rate(repo / "b", 3000, 5000)
        delays = freshness(repo / "a", models_dir, 300)
    q = statistics.quantiles(delays, n=100)
    print("Journey ingestion on the embedded SQLite store (SYNTHETIC events)")
    print(f"  ingestion, batches of 1,000   {rate:,.0f} events/s over {count:,} events "
          f"(goal >= 5,000)   ratio {rate / 5000:.2f}x")
    print(f"  ingestion, batches of 5,000   {rate_5000:,.0f} events/s   ratio {rate_5000 / 5000:.2f}x")
    print(f"  event-to-score freshness      p50 {q[49]:.1f} ms   p99 {q[98]:.1f} ms "
          "(goal p99 <= 50 ms)")


if __name__ == "__main__":
    main()
