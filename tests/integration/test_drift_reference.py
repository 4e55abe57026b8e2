"""A trained model folder carries the reference distributions, and serving measures against them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from features.catalog import MODEL_FEATURES
from service.drift import DriftMonitor
from service.models import load_bundle
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
