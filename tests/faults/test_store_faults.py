"""Redis hung (SIGSTOP), killed (SIGKILL) and restarted empty under Score and RecordEvents load:
answers inside their deadlines, writes UNAVAILABLE and retried without loss, data loss flagged."""

import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.backfill import load_history
from features.event_files import read_events
from features.events import ET, Event
from features.recorder import JourneyRecorder
from features.state import open_state
from features.store import open_store
from tests.faults.served import ServedProcess
from tests.faults.tally import FORBIDDEN_CODES, FaultTally, ScenarioRecorder, compare_counts
from tests.helpers import DemoWorld, free_port, wait_until

KNOWN = [f"C{n:06d}" for n in range(1, 201)]  # the demo customers loaded into this Redis
WRITE_DEADLINE = 3.0
STORE_TIMEOUT = 1.0
BATCHES, BATCH_SIZE = 40, 20


class RedisProcess:
    """A redis-server that can be stopped, killed and restarted on the same port; with
    append-only persistence (fsync always) a kill loses nothing, `wipe` loses everything."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: run `make test`, which installs it"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 20, "redis-server to answer")

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def wipe(self) -> None:
        """Stops the server and deletes its files: the next start is empty."""
        self.kill()
        shutil.rmtree(self.workdir)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)


def _load_known(world: DemoWorld, repo: Path, redis_url: str) -> None:
    """Loads the history of the KNOWN customers into Redis (this writes the load marker)."""
    store = open_store(repo, "redis", redis_url)
    state = open_state("redis", repo, redis_url)
    known = set(KNOWN)
    events = [e for e in read_events(world.events)
              if isinstance(e, Event) and e.customer_id in known]
    load_history(store, JourneyRecorder(store, state), events)
    state.close()


class Writer:
    """Sends BATCHES RecordEvents calls of fresh customers' contacts, each retried until OK
    (at-least-once, as a client should after UNAVAILABLE); records every attempt and how long
    the failed ones took."""

    def __init__(self, address: str, calls: ScenarioRecorder) -> None:
        run = uuid.uuid4().hex[:6]
        now = time.time()
        self.customers = [f"W{run}{n:03d}" for n in range(50)]
        events = [Event(f"store-fault-{run}-{n}", self.customers[n % 50], now - 60 - n,
                        ET.EVENT_TYPE_CONTACT, channel=1).to_proto()
                  for n in range(BATCHES * BATCH_SIZE)]
        self.contacts = Counter(e.customer_id for e in events)
        self.requests = [jpb.RecordEventsRequest(events=events[i:i + BATCH_SIZE])
                         for i in range(0, len(events), BATCH_SIZE)]
        self.failed_seconds: list[float] = []
        self.errors: list[grpc.RpcError] = []
        self.final: list[jpb.RecordEventsResponse] = []
        self._address = address
        self._calls = calls
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, seconds: float) -> None:
        self._thread.join(timeout=seconds)
        assert not self._thread.is_alive(), "the writer did not finish"

    def _run(self) -> None:
        with grpc.insecure_channel(self._address) as channel:
            record = jgrpc.JourneyServiceStub(channel).RecordEvents
            for request in self.requests:
                while True:
                    began = time.monotonic()
                    outcome = self._calls.call(record, request, timeout=WRITE_DEADLINE)
                    if isinstance(outcome, jpb.RecordEventsResponse):
                        self.final.append(outcome)
                        break
                    self.failed_seconds.append(time.monotonic() - began)
                    self.errors.append(outcome)
                    time.sleep(0.2)
                time.sleep(0.1)


@contextmanager
def _score_load(address: str, calls: ScenarioRecorder) -> Iterator[list[spb.ScoreResponse]]:
    """Two threads scoring KNOWN customers with a 2 s deadline; yields the answers so far."""
    answers: list[spb.ScoreResponse] = []
    stop = threading.Event()

    def run(offset: int) -> None:
        with grpc.insecure_channel(address) as channel:
            score = sgrpc.ScoringServiceStub(channel).Score
            n = offset
            while not stop.is_set():
                n += 2
                outcome = calls.call(score, spb.ScoreRequest(customer_id=KNOWN[n % len(KNOWN)]),
                                     timeout=2.0)
                if isinstance(outcome, spb.ScoreResponse):
                    answers.append(outcome)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def _latest(answers: list[spb.ScoreResponse], count: int = 20) -> list[spb.ScoreResponse]:
    wait_until(lambda: len(answers) >= count, 30, f"{count} answers")
    return answers[-count:]


@pytest.mark.slow
def test_redis_hung_killed_and_restarted_empty_under_load(
        demo_world: DemoWorld, tmp_path: Path, tally: FaultTally) -> None:
    calls = tally.scenario("Redis SIGSTOP, SIGKILL, restarted empty, under load")
    store_redis = RedisProcess(tmp_path / "redis")
    store_redis.start()
    served = ServedProcess(demo_world, tmp_path / "served", {
        "EFFORT_ONLINE_STORE": "redis", "EFFORT_REDIS_URL": store_redis.url,
        "EFFORT_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT), "EFFORT_STORE_CHECK_SECONDS": "0.2"})
    try:
        _load_known(demo_world, served.repo, store_redis.url)
        served.start()
        writer = Writer(served.address, calls)
        with _score_load(served.address, calls) as answers:
            assert not any(a.degraded for a in _latest(answers))
            writer.start()
            time.sleep(1.0)

            # Hung: reads and writes wait on a socket that never answers.
            store_redis.signal(signal.SIGSTOP)
            time.sleep(1.0)
            hung = _latest(answers, len(answers) + 10)
            time.sleep(2.0)
            store_redis.signal(signal.SIGCONT)
            assert all(a.degraded and "feature store unavailable" in a.degraded_reason
                       for a in hung[-5:]), [a.degraded_reason for a in hung[-5:]]

            # Killed, restarted with its data (append-only file): writes are retried.
            wait_until(lambda: not answers[-1].degraded, 30, "the store to answer again")
            store_redis.kill()
            time.sleep(1.5)
            store_redis.start()
            writer.join(120)
            wait_until(lambda: not answers[-1].degraded, 30, "the store to answer again")

            # Every event once, whatever was retried.
            with grpc.insecure_channel(served.address) as channel:
                batch = calls.call(sgrpc.ScoringServiceStub(channel).ScoreBatch,
                                   spb.ScoreBatchRequest(requests=[
                                       spb.ScoreRequest(customer_id=c, include_features=True)
                                       for c in writer.customers]), timeout=30)
            assert isinstance(batch, spb.ScoreBatchResponse), batch
            assert not any(r.degraded for r in batch.responses)
            counted = compare_counts(writer.contacts, {
                r.customer_id: int(r.features.get("contacts_24h", 0)) for r in batch.responses})
            calls.events(counted)
            assert (counted.lost, counted.double_counted) == (0, 0), counted
            assert all(a.accepted + a.duplicates == BATCH_SIZE for a in writer.final)

            # Restarted empty: the load marker is gone, answers say so until it is reloaded.
            store_redis.wipe()
            store_redis.start()
            served.wait_metric("effort_feature_store_data_lost", 1)
            lost = _latest(answers, len(answers) + 10)[-5:]
            assert all(a.degraded and "lost its data" in a.degraded_reason for a in lost), [
                a.degraded_reason for a in lost]
            _load_known(demo_world, served.repo, store_redis.url)
            wait_until(lambda: served.metric("effort_feature_store_data_lost") == 0, 15,
                       "the data-loss flag to clear")
            back = _latest(answers, len(answers) + 10)[-5:]
            assert not any(a.degraded for a in back) and all(a.customer_known for a in back)
    finally:
        assert served.stop() == 0, served.log_text()[-3000:]
        store_redis.stop()

    assert writer.failed_seconds, "the faults should have failed some writes"
    # Failed writes answered inside their deadline, from the server's own timeout.
    assert max(writer.failed_seconds) < WRITE_DEADLINE, writer.failed_seconds
    # Each says to retry: one ErrorInfo and a RetryInfo.
    for error in writer.errors:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None
        kinds = [detail.type_url.rsplit("/", 1)[-1] for detail in status.details]
        assert kinds == ["google.rpc.ErrorInfo", "google.rpc.RetryInfo"], kinds
        info = error_details_pb2.ErrorInfo()
        status.details[0].Unpack(info)
        assert info.reason == "STORE_UNAVAILABLE"
    figures = calls.snapshot()
    assert not set(figures.codes) & set(FORBIDDEN_CODES), figures.codes
    assert set(figures.codes) <= {"OK", "UNAVAILABLE"}, figures.codes
    log = served.log_text()
    assert "lost its data" in log and "loaded again" in log

