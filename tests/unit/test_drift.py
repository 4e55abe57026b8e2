"""Drift: reference bins from training data, PSI gauges over the last scored rows, bounded memory."""

import json
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from features.catalog import MODEL_FEATURES
from service.drift import (
    DriftMonitor,
    DriftReference,
    load_reference,
    parse_reference,
    start_refresher,
)
from service.manifest import verified_manifest
from training.model_folder import REFERENCE, write_folder
from training.reference_distributions import (
    SCORES,
    bin_counts,
    bin_edges,
    psi,
    reference_distributions,
)

WAIT = MODEL_FEATURES.index("wait_seconds_avg_7d")
CONTACTS = MODEL_FEATURES.index("contacts_7d")


def _rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs (counts; one float column, a fifth of it missing) and both scores."""
    rng = np.random.default_rng(seed)
    matrix = rng.poisson(2.0, size=(count, len(MODEL_FEATURES))).astype(np.float64)
    waits = rng.exponential(60.0, count)
    waits[rng.random(count) < 0.2] = np.nan
    matrix[:, WAIT] = waits
    return matrix, rng.uniform(0, 100, count), rng.beta(2, 8, count)


def _reference(rows: int = 20_000) -> DriftReference:
    raw = reference_distributions(*_rows(rows, seed=1), MODEL_FEATURES)
    return parse_reference(json.loads(json.dumps(raw)), "v1", MODEL_FEATURES)


def _fed(monitor: DriftMonitor, matrix: np.ndarray, effort: np.ndarray,
         churn: np.ndarray) -> DriftMonitor:
    for row, e, c in zip(matrix, effort, churn, strict=True):
        monitor.observe(row, float(e), float(c))
    return monitor


def _feature_gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("effort_feature_drift_psi", {"feature": name})


def _score_gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("effort_score_drift_psi", {"score": name})


def test_continuous_values_get_decile_bins_and_out_of_range_bins() -> None:
    values = np.arange(100, dtype=np.float64)
    edges = bin_edges(values)
    assert edges[:-1].tolist() == [0, 9, 19, 29, 39, 49, 59, 69, 79, 89]
    assert edges[-1] == np.nextafter(99.0, np.inf)
    shares = bin_counts(values, edges) / len(values)
    # below the minimum, [0, 9), eight deciles, [89, 99], above the maximum, missing
    assert shares.tolist() == pytest.approx([0, 0.09, *[0.1] * 8, 0.11, 0, 0])


def test_ties_share_a_bin_and_missing_values_have_their_own() -> None:
    values = np.array([0.0] * 60 + [1.0] * 20 + [2.0] * 10 + [np.nan] * 10)
    edges = bin_edges(values)
    # Deciles of the 90 present values: six 0s, two 1s and one 2 (the top 11% are 2s).
    assert edges.tolist() == [0.0, 1.0, 2.0, np.nextafter(2.0, np.inf)]
    assert (bin_counts(values, edges) / len(values)).tolist() == pytest.approx(
        [0, 0.6, 0.2, 0.1, 0, 0.1])
    assert bin_counts(np.array([-1.0, 3.0, np.inf, -np.inf]), edges).tolist() == [2, 0, 0, 0, 2, 0]
    assert bin_edges(np.full(5, np.nan)).size == 0
    assert bin_counts(np.full(5, np.nan), np.empty(0)).tolist() == [0, 5]  # one bin, missing


def test_the_reference_covers_every_input_and_both_scores() -> None:
    matrix, effort, churn = _rows(5_000, seed=2)
    raw = reference_distributions(matrix, effort, churn, MODEL_FEATURES)
    assert raw["rows"] == 5_000 and raw["format"] == 1
    assert [c["name"] for c in raw["features"]] == list(MODEL_FEATURES)
    assert [c["name"] for c in raw["scores"]] == list(SCORES)
    for column in (*raw["features"], *raw["scores"]):
        assert len(column["shares"]) == len(column["edges"]) + 2
        assert sum(column["shares"]) == pytest.approx(1.0)
    wait = raw["features"][WAIT]
    assert wait["shares"][-1] == pytest.approx(0.2, abs=0.02)
    assert len(wait["edges"]) == 11  # minimum, 9 deciles, above the maximum
    reference = parse_reference(json.loads(json.dumps(raw)), "v1", MODEL_FEATURES)
    assert reference.names == (*MODEL_FEATURES, *SCORES)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = np.array([0.25, 0.25, 0.25, 0.25, 0.0])
    assert psi(reference, reference) == 0.0
    small = psi(np.array([0.3, 0.25, 0.25, 0.2, 0.0]), reference)
    large = psi(np.array([0.7, 0.1, 0.1, 0.1, 0.0]), reference)
    assert 0 < small < 0.1 < 0.25 < large
    assert math.isfinite(psi(np.array([0.0, 0.0, 0.0, 0.0, 1.0]), reference))


def test_the_same_distribution_reads_near_zero() -> None:
    monitor = _fed(DriftMonitor(_reference()), *_rows(4_096, seed=3))
    values = monitor.refresh()
    assert set(values) == {*MODEL_FEATURES, *SCORES}
    assert max(values.values()) < 0.05, max(values.items(), key=lambda item: item[1])
    assert _feature_gauge("contacts_7d") == pytest.approx(values["contacts_7d"])
    assert REGISTRY.get_sample_value("effort_drift_window_rows") == 4_096


def test_a_shifted_stream_raises_its_gauges_above_the_alert_threshold() -> None:
    monitor = DriftMonitor(_reference())
    matrix, effort, churn = _rows(6_000, seed=4)
    _fed(monitor, matrix, effort, churn)
    monitor.refresh()
    before = _feature_gauge("contacts_7d")
    assert before is not None and before < 0.05
    matrix[:, CONTACTS] += 3  # customers now call three more times a week
    _fed(monitor, matrix, np.minimum(effort + 30, 100), churn)
    monitor.refresh()
    shifted = _feature_gauge("contacts_7d")
    assert shifted is not None and shifted > 0.25
    assert (_score_gauge("effort_score") or 0) > 0.25
    assert (_score_gauge("churn_risk") or 1) < 0.05
    assert (_feature_gauge("contacts_30d") or 1) < 0.05


def test_missing_values_are_a_bin_of_their_own() -> None:
    monitor = DriftMonitor(_reference())
    matrix, effort, churn = _rows(4_096, seed=5)
    _fed(monitor, matrix, effort, churn)
    assert monitor.refresh()["wait_seconds_avg_7d"] < 0.05  # a fifth missing, as in training
    matrix[:, WAIT] = np.nan
    _fed(monitor, matrix, effort, churn)
    assert monitor.refresh()["wait_seconds_avg_7d"] > 0.25


def test_memory_is_bounded_by_the_window() -> None:
    monitor = DriftMonitor(_reference(), window=1_024)
    ring = monitor._ring
    matrix, effort, churn = _rows(1_000, seed=6)
    for n in range(100_000):
        monitor.observe(matrix[n % 1_000], float(effort[n % 1_000]), float(churn[n % 1_000]))
    assert monitor._ring is ring and ring.shape == (1_024, len(MODEL_FEATURES) + 2)
    assert monitor.window_rows() == 1_024
    assert max(monitor.refresh().values()) < 0.1


def test_a_batch_is_recorded_as_its_rows_one_by_one() -> None:
    matrix, effort, churn = _rows(3_000, seed=7)
    one_by_one = _fed(DriftMonitor(_reference(), window=1_024), matrix, effort, churn)
    batched = DriftMonitor(_reference(), window=1_024)
    batched.observe_many(matrix[:100], effort[:100], churn[:100])
    batched.observe_many(matrix[100:100], effort[100:100], churn[100:100])
    batched.observe_many(matrix[100:], effort[100:], churn[100:])
    assert batched.window_rows() == one_by_one.window_rows() == 1_024
    assert np.array_equal(np.sort(batched._ring, axis=0), np.sort(one_by_one._ring, axis=0),
                          equal_nan=True)


def test_too_few_rows_or_no_reference_export_nan() -> None:
    monitor = _fed(DriftMonitor(_reference(), min_rows=500), *_rows(499, seed=8))
    assert monitor.refresh() == {}
    assert math.isnan(_feature_gauge("contacts_7d") or 0.0)
    assert math.isnan(_score_gauge("churn_risk") or 0.0)
    assert REGISTRY.get_sample_value("effort_drift_window_rows") == 499
    monitor.observe(_rows(1, seed=9)[0][0], 50.0, 0.1)
    assert set(monitor.refresh()) == {*MODEL_FEATURES, *SCORES}
    assert not math.isnan(_feature_gauge("contacts_7d") or math.nan)
    off = _fed(DriftMonitor(None), *_rows(1_000, seed=10))
    assert off.refresh() == {} and math.isnan(_feature_gauge("contacts_7d") or 0.0)


def test_a_swap_starts_a_new_window_for_the_new_model() -> None:
    monitor = _fed(DriftMonitor(_reference(), min_rows=500), *_rows(2_000, seed=11))
    assert monitor.refresh()
    monitor.swap(_reference(rows=10_000))
    assert monitor.window_rows() == 0 and monitor.refresh() == {}
    _fed(monitor, *_rows(600, seed=12))
    assert monitor.window_rows() == 600 and monitor.refresh()
    monitor.swap(None)
    _fed(monitor, *_rows(600, seed=13))
    assert monitor.refresh() == {}


def test_the_refresher_sets_the_gauges_in_the_background() -> None:
    monitor = _fed(DriftMonitor(_reference(), min_rows=500), *_rows(700, seed=17))
    poller = start_refresher(monitor, 0.02)
    try:
        deadline = time.monotonic() + 5
        while REGISTRY.get_sample_value("effort_drift_window_rows") != 700:
            assert time.monotonic() < deadline, "the refresher never ran"
            time.sleep(0.01)
    finally:
        poller.stop()
    assert not math.isnan(_feature_gauge("contacts_7d") or math.nan)


def test_a_reference_for_other_columns_is_not_used(caplog: pytest.LogCaptureFixture) -> None:
    raw = reference_distributions(*_rows(1_000, seed=14), MODEL_FEATURES)
    with pytest.raises(ValueError, match="columns"):
        parse_reference(raw, "v1", MODEL_FEATURES[:-1])
    raw["features"][0]["shares"][0] += 0.5
    with pytest.raises(ValueError, match="malformed"):
        parse_reference(raw, "v1", MODEL_FEATURES)
    other = DriftReference("v2", ("a", *SCORES), (np.empty(0),) * 3, (np.array([0, 1.0, 0]),) * 3)
    with caplog.at_level(logging.WARNING, logger="service.drift"):
        monitor = _fed(DriftMonitor(other), *_rows(600, seed=15))
    assert monitor.refresh() == {}
    assert "other columns" in caplog.text


class _TextModel:
    def __init__(self, text: str) -> None:
        self.text = text

    def save_model(self, filename: str) -> Any:
        Path(filename).write_text(self.text)


def _report(path: Path, _manifest: dict[str, Any], _metrics: dict[str, Any]) -> None:
    path.write_text("report")


def _folder(tmp_path: Path, reference: dict[str, Any] | None) -> Path:
    manifest = {"features": list(MODEL_FEATURES), "feature_service": "effort_journey_v2",
                "thresholds": {"effort_score": 70.0, "churn_risk": 0.3},
                "priors": {"effort_score": 40.0, "churn_risk": 0.15},
                "churn_horizon_days": 90, "effort_half_life_days": 3.0,
                "churn_calibration": {"x": [0.0, 1.0], "y": [0.0, 1.0]}}
    _, folder = write_folder(tmp_path, datetime.now(UTC), _TextModel("effort\n"),
                             _TextModel("churn\n"), manifest, {}, {}, _report, reference)
    return folder


def test_the_model_folder_checksums_its_reference_and_serving_reads_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = reference_distributions(*_rows(2_000, seed=16), MODEL_FEATURES)
    folder = _folder(tmp_path / "new", raw)
    manifest, _ = verified_manifest(folder)
    assert REFERENCE in manifest.checksums
    reference = load_reference(folder, manifest.checksums, manifest.version, MODEL_FEATURES)
    assert reference is not None and reference.version == manifest.version
    assert reference.edges[CONTACTS].tolist() == raw["features"][CONTACTS]["edges"]
    # A folder from before reference distributions is served without drift, said once.
    old = _folder(tmp_path / "old", None)
    manifest, _ = verified_manifest(old)
    assert REFERENCE not in manifest.checksums
    with caplog.at_level(logging.INFO, logger="service.drift"):
        assert load_reference(old, manifest.checksums, manifest.version, MODEL_FEATURES) is None
    assert len(caplog.records) == 1 and "not measured" in caplog.records[0].getMessage()
    # A file the manifest does not checksum is not read.
    (old / REFERENCE).write_text(json.dumps(raw))
    assert load_reference(old, manifest.checksums, manifest.version, MODEL_FEATURES) is None
