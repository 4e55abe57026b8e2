"""Shared fixtures: a real redis-server, a small SYNTHETIC demo world, and running gRPC servers.

Each fixture is built only when a test asks for it, so the unit tier starts none of them.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from features.backfill import load_history
from features.event_files import read_events
from features.events import Event
from features.recorder import JourneyRecorder
from features.state import open_state
from features.store import open_store
from service.server import RunningServer, create_server
from service.settings import Settings
from tests.helpers import SIM_CUSTOMERS, SIM_END, DemoWorld, free_port, wait_until
from training.dataset import read_labels, training_frame
from training.registry import promote
from training.simulate import simulate, write_files
from training.train import train_models

# Servers stop at once in tests (inherited by the servers tests start as processes); the tests
# of the drain set their own.
os.environ.setdefault("EFFORT_DRAIN_SECONDS", "0")
# No prediction log in the checkout's var/ from servers tests start; its tests set a folder.
os.environ.setdefault("EFFORT_PREDICTION_LOG_DIR", "")


def _answers_ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def redis_server(workdir: Path, password: str | None = None) -> Iterator[int]:
    """A real redis-server on a free loopback port (with --requirepass when `password` is
    given), stopped on leaving; yields its port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    port = free_port()
    auth = [] if password is None else ["--requirepass", password]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), *auth], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, password=password)
    try:
        wait_until(lambda: process.poll() is not None or _answers_ping(client), 10,
                   "redis-server to answer")
        if process.poll() is not None:
            pytest.fail("redis-server did not start")
        yield port
    finally:
        client.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis://127.0.0.1:PORT/0 of a real redis-server on a free port, stopped after the session."""
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


# Every character Feast's connection string or a URL could misread: , = : @ / % # " and space.
REDIS_PASSWORD = 'p,w=1 #x:"y%@/'


@pytest.fixture(scope="session")
def protected_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """(port, password) of a real redis-server started with --requirepass, stopped after the
    session."""
    with redis_server(tmp_path_factory.mktemp("redis-password"), REDIS_PASSWORD) as port:
        yield port, REDIS_PASSWORD


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorld:
    """SYNTHETIC events and labels for 3,000 customers, loaded into SQLite and trained on."""
    root = tmp_path_factory.mktemp("world")
    result = simulate(SIM_CUSTOMERS, 180, SIM_END, seed=11, truth_samples=4, history_days=90)
    events, labels = write_files(result, root / "demo")
    repo = root / "repo"
    store = open_store(repo)
    state = open_state("sqlite", repo, "")
    load_history(store, JourneyRecorder(store, state), result.events)
    state.close()
    frame = training_frame(store, read_labels(labels))
    trained = train_models(frame, root / "models", synthetic=True, events=result.events)
    promote(root / "models", trained.version)
    return DemoWorld(events, labels, root / "models", trained.version, repo, frame)


def _loaded_settings(world: DemoWorld, repo: Path, online_store: str, redis_url: str) -> Settings:
    store = open_store(repo, online_store, redis_url)  # type: ignore[arg-type]
    state = open_state(online_store, repo, redis_url)
    events = [e for e in read_events(world.events) if isinstance(e, Event)]
    load_history(store, JourneyRecorder(store, state), events)
    state.close()
    return Settings(grpc_host="127.0.0.1", grpc_port=0, feature_repo=repo,
                    online_store=online_store, redis_url=redis_url,
                    models_dir=world.models_dir)


@pytest.fixture(scope="session", params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest, demo_world: DemoWorld,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real gRPC server on a free port over a loaded SQLite or Redis online store."""
    url = (request.getfixturevalue("redis_url") if request.param == "redis"
           else "redis://localhost:6379/0")  # unused by the SQLite store
    repo = tmp_path_factory.mktemp(f"repo-{request.param}")
    running = create_server(_loaded_settings(demo_world, repo, request.param, url))
    yield running
    running.stop(grace=1.0)
