"""Hot reload: a promoted model replaces the served one under load with zero failed calls; a bad
model (other features, bad manifest, truncated file, misnamed folder) is refused once and the old
one keeps serving; rollback returns to the previous; a corrupt CURRENT at start falls back."""

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from service.models import ModelBundleError
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


def _refusals_for(reason: str) -> float:
    return REGISTRY.get_sample_value("effort_model_reload_refusals_total",
                                     {"reason": reason}) or 0.0


# A change to a copied model folder: (folder, its manifest with version = folder name, the
# original version).
Change = Callable[[Path, dict[str, Any], str], None]


def _null_threshold(folder: Path, manifest: dict[str, Any], original: str) -> None:
    manifest["thresholds"]["effort_score"] = None


def _string_priors(folder: Path, manifest: dict[str, Any], original: str) -> None:
    manifest["priors"] = {"effort_score": "high", "churn_risk": "0.15"}


def _truncated_model(folder: Path, manifest: dict[str, Any], original: str) -> None:
    model = folder / "churn.lgb.txt"
    model.write_bytes(model.read_bytes()[:model.stat().st_size // 2])
    manifest["checksums"]["churn.lgb.txt"] = hashlib.sha256(model.read_bytes()).hexdigest()


def _misnamed_folder(folder: Path, manifest: dict[str, Any], original: str) -> None:
    manifest["version"] = original  # a copy of the serving model under another folder name


def _bad_copy(models_dir: Path, original: str, name: str, change: Change) -> Path:
    folder = models_dir / name
    shutil.copytree(models_dir / original, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = name
    change(folder, manifest, original)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _reloader_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.reloader" and r.levelno >= logging.WARNING]



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


@pytest.mark.parametrize(("change", "reason"), [
    (_null_threshold, "manifest"), (_string_priors, "manifest"),
    (_truncated_model, "model_file"), (_misnamed_folder, "version_mismatch"),
], ids=["null-threshold", "string-priors", "truncated-model", "misnamed-folder"])
def test_a_bad_model_is_refused_once_and_the_old_keeps_serving(
        reloading_server: RunningServer, demo_world: DemoWorld, models_dir: Path,
        caplog: pytest.LogCaptureFixture, change: Change, reason: str) -> None:
    caplog.set_level(logging.INFO)
    _bad_copy(models_dir, demo_world.version, "bad-model", change)
    by_reason, refused = _refusals_for(reason), _refusals()
    promote(models_dir, "bad-model")
    wait_until(lambda: _refusals_for(reason) > by_reason, 15, "the refusal")
    polls = reloading_server.reloader.polls
    wait_until(lambda: reloading_server.reloader.polls >= polls + 5, 15, "five more polls")
    assert _refusals_for(reason) == by_reason + 1 and _refusals() == refused + 1
    lines = _reloader_lines(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "refused model bad-model" in lines[0].getMessage() and lines[0].exc_info is None
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("service"))
    assert reloading_server.reloader.check() == "unchanged"
    assert _served_version(reloading_server.port) == demo_world.version  # Score still answers


def test_a_refused_folder_is_tried_again_once_it_changes(
        reloading_server: RunningServer, demo_world: DemoWorld, models_dir: Path) -> None:
    folder = _bad_copy(models_dir, demo_world.version, "fixed-later", _null_threshold)
    refused = _refusals_for("manifest")
    promote(models_dir, "fixed-later")
    wait_until(lambda: _refusals_for("manifest") > refused, 15, "the refusal")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["thresholds"] = json.loads(
        (models_dir / demo_world.version / "manifest.json").read_text())["thresholds"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    wait_until(lambda: _served_version(reloading_server.port) == "fixed-later", 15,
               "the repaired model to be served")
    assert _refusals_for("manifest") == refused + 1


def _start(demo_world: DemoWorld, models_dir: Path) -> RunningServer:
    return create_server(Settings(grpc_host="127.0.0.1", grpc_port=0, feature_repo=demo_world.repo,
                                  models_dir=models_dir, model_poll_seconds=0.1))


@pytest.mark.parametrize("corruption", ["missing-folder", "invalid-folder"])
def test_a_corrupt_current_at_start_serves_the_previous_promotion(
        demo_world: DemoWorld, models_dir: Path, caplog: pytest.LogCaptureFixture,
        corruption: str) -> None:
    caplog.set_level(logging.INFO)
    if corruption == "missing-folder":
        (models_dir / "CURRENT").write_text("20991231-235959-deadbeef\n")
        with (models_dir / "PROMOTIONS").open("a") as history:
            history.write("20991231-235959-deadbeef\n")
    else:
        _bad_copy(models_dir, demo_world.version, "bad-model", _null_threshold)
        promote(models_dir, "bad-model")
    running = _start(demo_world, models_dir)
    try:
        assert _served_version(running.port) == demo_world.version
        polls = running.reloader.polls
        wait_until(lambda: running.reloader.polls >= polls + 5, 15, "five polls")
    finally:
        running.stop(grace=1.0)
    lines = _reloader_lines(caplog)
    assert [r.levelno for r in lines] == [logging.WARNING], [r.getMessage() for r in lines]
    assert f"serving {demo_world.version}, the newest valid earlier promotion" in \
        lines[0].getMessage()


def test_no_valid_model_at_all_stops_the_start_with_one_line(
        demo_world: DemoWorld, models_dir: Path) -> None:
    _bad_copy(models_dir, demo_world.version, "bad-model", _string_priors)
    (models_dir / "CURRENT").write_text("bad-model\n")
    (models_dir / "PROMOTIONS").write_text("bad-model\n")
    with pytest.raises(ModelBundleError, match=r"priors\.effort_score") as failed:
        _start(demo_world, models_dir)
    assert "\n" not in str(failed.value)
