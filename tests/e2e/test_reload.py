"""Hot reload: a promoted model replaces the served one under load with zero failed calls; a model
for other features is refused and the old one keeps serving; rollback returns to the previous."""

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from service.server import RunningServer, create_server
from service.settings import Settings
from tests.helpers import DemoWorld, wait_until
from training.registry import current_version, promote, rollback
from training.train import train_models


@pytest.fixture
def models_dir(demo_world: DemoWorld, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(demo_world.models_dir, copy)
    return copy


@pytest.fixture
def reloading_server(demo_world: DemoWorld, models_dir: Path) -> Iterator[RunningServer]:
    running = create_server(Settings(grpc_host="127.0.0.1", grpc_port=0,
                                     feature_repo=demo_world.repo, models_dir=models_dir,
                                     model_poll_seconds=0.1))
    yield running
    running.stop(grace=1.0)


def _served_version(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return str(sgrpc.ScoringServiceStub(channel).Score(
            spb.ScoreRequest(customer_id="C000001"), timeout=5).model_version)


def _refusals() -> float:
    return REGISTRY.get_sample_value("effort_model_reloads_total", {"outcome": "refused"}) or 0.0




def test_promotion_swaps_under_load_with_zero_failed_calls(
        reloading_server: RunningServer, demo_world: DemoWorld, models_dir: Path) -> None:
    new = train_models(demo_world.frame, models_dir, seed=99, synthetic=True)
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{reloading_server.port}") as channel:
            stub = sgrpc.ScoringServiceStub(channel)
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = stub.Score(spb.ScoreRequest(customer_id=f"C{n % 3000 + 1:06d}"),
                                        timeout=5)
                    seen.append(answer.model_version)
                except grpc.RpcError as error:
                    failures.append(f"{error.code()}: {error.details()}")

    clients = [threading.Thread(target=load) for _ in range(4)]
    for client in clients:
        client.start()
    wait_until(lambda: len(seen) >= 25, what="calls on the old model")
    promote(models_dir, new.version)
    wait_until(lambda: _served_version(reloading_server.port) == new.version, 15,
               "the new model to be served")
    swapped_at = len(seen)
    wait_until(lambda: len(seen) >= swapped_at + 30, what="calls on the new model")
    stop.set()
    for client in clients:
        client.join()
    assert failures == []
    assert set(seen) == {demo_world.version, new.version} and len(seen) > 50


def test_model_for_other_features_is_refused_and_old_keeps_serving(
        reloading_server: RunningServer, demo_world: DemoWorld, models_dir: Path) -> None:
    bad = models_dir / "bad-features"
    shutil.copytree(models_dir / demo_world.version, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["version"] = "bad-features"
    manifest["features"] = [*manifest["features"][:-1], "shoe_size"]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    refused_before = _refusals()
    promote(models_dir, "bad-features")
    wait_until(lambda: _refusals() > refused_before, 10, "the refusal")
    assert _refusals() == refused_before + 1
    polls = reloading_server.reloader.polls
    wait_until(lambda: reloading_server.reloader.polls >= polls + 3, 10, "three more polls")
    assert _refusals() == refused_before + 1  # the refused version is not retried
    assert reloading_server.reloader.check() == "unchanged"  # refused once, not retried
    assert _served_version(reloading_server.port) == demo_world.version

    assert rollback(models_dir) == demo_world.version
    assert current_version(models_dir) == demo_world.version
    assert _served_version(reloading_server.port) == demo_world.version
