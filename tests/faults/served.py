"""`effort serve` as a real process for fault injection: start, kill, restart, scrape metrics, load it."""

import shutil
import signal
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import grpc
from prometheus_client.parser import text_string_to_metric_families

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from effort.v1.channel_pb2 import CHANNEL_VOICE
from tests.e2e.test_serve_process import COMMAND, _env
from tests.faults.tally import ScenarioRecorder, code_name
from tests.helpers import SIM_CUSTOMERS, DemoWorld, free_port, wait_serving, wait_until

POLL_SECONDS = "0.1"  # how often the served process looks at CURRENT


class ServedProcess:
    """One `effort serve` process over its own copies of the demo world's models and feature repo.

    The gRPC and metrics ports stay the same across restarts, so clients reconnect to the new
    process; stderr of every run is appended to one log file.
    """

    def __init__(self, world: DemoWorld, root: Path, extra_env: dict[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.models_dir = root / "models"
        self.repo = root / "repo"
        shutil.copytree(world.models_dir, self.models_dir)
        shutil.copytree(world.repo, self.repo)
        self.version = world.version
        self.port = free_port()
        self.env = {**_env(self.models_dir, self.repo, self.port),
                    "EFFORT_MODEL_POLL_SECONDS": POLL_SECONDS, **(extra_env or {})}
        self.metrics_port = int(self.env["EFFORT_METRICS_PORT"])
        self.log = root / "stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts the process and returns once its health check answers SERVING."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as stderr:
            self.process = subprocess.Popen(COMMAND, env=self.env, stdout=subprocess.DEVNULL,
                                            stderr=stderr)
        wait_serving(self.port, self.process, log=self.log)

    def send(self, signum: signal.Signals) -> None:
        """Sends `signum` (SIGKILL, SIGSTOP, SIGCONT, SIGTERM, ...) to the running process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """kill -9, and waits for the process to be gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (SIGCONT first, in case it was stopped), then waits; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            raise

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`, scraped from the
        process's metrics page; 0 when there is none."""
        page = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=10).read().decode()
        return sum(sample.value for family in text_string_to_metric_families(page)
                   for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def wait_metric(self, name: str, value: float, seconds: float = 15, **labels: str) -> None:
        """Waits until the metric reaches exactly `value` (a counter the server may update just
        after its answer reached the client)."""
        wait_until(lambda: self.metric(name, **labels) >= value, seconds,
                   f"{name}{labels} to reach {value:g}", poll=0.05)
        assert self.metric(name, **labels) == value, (name, labels, value)


@contextmanager
def served_process(world: DemoWorld, root: Path,
                   extra_env: dict[str, str] | None = None) -> Iterator[ServedProcess]:
    """A started ServedProcess, stopped (SIGTERM) on exit."""
    served = ServedProcess(world, root, extra_env)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def demo_customer(n: int) -> spb.ScoreRequest:
    """A Score request for the n-th call: the demo's customers in turn, arriving on voice."""
    return spb.ScoreRequest(customer_id=f"C{n % SIM_CUSTOMERS + 1:06d}", channel=CHANNEL_VOICE,
                            queue_wait_seconds=float(n % 300))


class ScoreLoad:
    """Threads sending Score calls back to back until stopped; every outcome goes to `recorder`.

    Use as a context manager; `versions` counts the model versions that answered, `failures`
    lists every non-OK outcome as (code, details).
    """

    def __init__(self, address: str, recorder: ScenarioRecorder, threads: int = 2,
                 timeout: float = 5.0,
                 request: Callable[[int], spb.ScoreRequest] = demo_customer) -> None:
        self._address = address
        self._recorder = recorder
        self._timeout = timeout
        self._request = request
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                          name=f"score-load-{i}") for i in range(threads)]
        self.calls = 0
        self.versions: Counter[str] = Counter()
        self.failures: list[tuple[str, str]] = []
        self.degraded = 0
        self.last_version = ""

    def __enter__(self) -> "ScoreLoad":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 10)

    def wait_calls(self, more: int, seconds: float = 30) -> None:
        """Waits until `more` calls beyond those made so far have answered (any outcome)."""
        target = self.calls + more
        wait_until(lambda: self.calls >= target, seconds, f"{more} more Score calls")

    def _run(self, offset: int) -> None:
        with grpc.insecure_channel(self._address) as channel:
            score = sgrpc.ScoringServiceStub(channel).Score
            n = offset
            while not self._stop.is_set():
                n += len(self._threads)
                outcome = self._recorder.call(score, self._request(n), timeout=self._timeout)
                with self._lock:
                    self.calls += 1
                    if isinstance(outcome, grpc.RpcError):
                        self.failures.append((code_name(outcome),
                                              str(cast(grpc.Call, outcome).details())))
                    else:
                        self.versions[outcome.model_version] += 1
                        self.last_version = outcome.model_version
                        self.degraded += outcome.degraded
