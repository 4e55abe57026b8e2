"""A trained model folder carries the reference distributions, and serving measures against them."""

import json
import math
import shutil
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client import REGISTRY

from effort.v1 import channel_pb2 as channel_pb
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.catalog import MODEL_FEATURES
from service import metrics
from service.drift import REFRESH_SECONDS, DriftMonitor
from service.models import load_bundle
from service.server import create_server
from service.settings import Settings
from tests.helpers import DemoWorld
from training.dataset import DECAYED_FEATURE, half_life_column
from training.model_folder import MANIFEST, REFERENCE
from training.reference_distributions import SCORES
from training.registry import current_folder
from training.train import split_by_customer


def test_the_trained_folder_has_a_verified_reference_that_serving_loads(
        demo_world: DemoWorld) -> None:
    folder = current_folder(demo_world.models_dir)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert REFERENCE in manifest["checksums"]
    raw = json.loads((folder / REFERENCE).read_text())
    frame = demo_world.frame
    _, held_out = split_by_customer(np.ones(len(frame), dtype=bool),
                                    frame["customer_id"].astype(str).tolist())
    assert raw["rows"] == int(held_out.sum()) > 500
    bundle = load_bundle(folder, MODEL_FEATURES)
    reference = bundle.drift_reference
    assert reference is not None and reference.names == (*MODEL_FEATURES, *SCORES)
    # The held-out rows scored by the served model are the reference itself: no drift.
    rows = frame.loc[held_out, list(MODEL_FEATURES)].to_numpy(dtype=np.float64)
    rows[:, MODEL_FEATURES.index(DECAYED_FEATURE)] = frame.loc[
        held_out, half_life_column(bundle.effort_half_life_days)].to_numpy(dtype=np.float64)
    effort, churn = bundle.predict(rows)
    monitor = DriftMonitor(reference, window=8192)
    assert len(rows) <= monitor.window
    monitor.observe_many(rows, effort, churn)
    values = monitor.refresh()
    assert set(values) == {*MODEL_FEATURES, *SCORES}
    assert max(values.values()) == pytest.approx(0, abs=1e-3), values


def test_a_folder_from_before_reference_distributions_still_loads(demo_world: DemoWorld,
                                                                  tmp_path: Path) -> None:
    old = tmp_path / current_folder(demo_world.models_dir).name
    shutil.copytree(current_folder(demo_world.models_dir), old)
    manifest = json.loads((old / MANIFEST).read_text())
    del manifest["checksums"][REFERENCE]
    (old / MANIFEST).write_text(json.dumps(manifest))
    (old / REFERENCE).unlink()
    bundle = load_bundle(old, MODEL_FEATURES)
    assert bundle.drift_reference is None
    assert DriftMonitor(bundle.drift_reference).refresh() == {}


WAIT = "request_queue_wait_seconds"


def _gauge(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def _exported_after(stub: sgrpc.ScoringServiceStub, waits: list[float]) -> float:
    """request_queue_wait_seconds' PSI once the server's refresher has seen a batch of contacts
    with these waits (the window then holds only them)."""
    metrics.FEATURE_DRIFT_PSI.labels(feature=WAIT).set(math.nan)
    metrics.DRIFT_WINDOW_ROWS.set(0)
    stub.ScoreBatch(spb.ScoreBatchRequest(requests=[
        spb.ScoreRequest(customer_id=f"C{n % 1000 + 1:06d}", channel=channel_pb.CHANNEL_VOICE,
                         queue_wait_seconds=wait) for n, wait in enumerate(waits)]), timeout=60)
    deadline = time.monotonic() + 3 * REFRESH_SECONDS
    while _gauge("effort_drift_window_rows") < min(len(waits), 4096) or math.isnan(
            _gauge("effort_feature_drift_psi", feature=WAIT)):
        assert time.monotonic() < deadline, "the refresher never exported the stream"
        time.sleep(0.5)
    return _gauge("effort_feature_drift_psi", feature=WAIT)


def test_a_served_stream_with_shifted_waits_raises_the_gauge(demo_world: DemoWorld) -> None:
    """Through a real server and its refresher: contacts that all waited an hour raise
    request_queue_wait_seconds' PSI past the alert's 0.25, far above contacts whose waits are
    drawn from the training rows'. Those stay near the alert (0.34 on the demo world), not at 0:
    training's rows also hold contacts without a wait (missing), which a request cannot send."""
    frame = demo_world.frame
    _, held_out = split_by_customer(np.ones(len(frame), dtype=bool),
                                    frame["customer_id"].astype(str).tolist())
    trained = frame.loc[held_out, WAIT].dropna().to_numpy(dtype=np.float64)
    trained = trained[trained > 0]  # a request without a wait sends 0, read as none
    like_training = np.random.default_rng(7).choice(trained, size=4100).tolist()
    running = create_server(Settings(grpc_host="127.0.0.1", grpc_port=0,
                                     feature_repo=demo_world.repo,
                                     models_dir=demo_world.models_dir, model_poll_seconds=0,
                                     prediction_log_dir=None))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = sgrpc.ScoringServiceStub(channel)
            usual = _exported_after(stub, like_training)
            shifted = _exported_after(stub, [3600.0] * 4100)
        assert usual < 0.5 and shifted > 0.25 and shifted > 10 * usual, (usual, shifted)
    finally:
        running.stop(grace=1)
