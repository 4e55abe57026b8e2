"""The manifest schema serving checks: types, ranges, required fields and the model files' checksums."""

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from service.manifest import Manifest, ManifestError, parse_manifest, verified_manifest

EFFORT_BYTES, CHURN_BYTES = b"effort model\n", b"churn model\n"


def _manifest() -> dict[str, Any]:
    """A valid manifest in the writer's shape, with fields serving does not read."""
    return {
        "version": "20261124-070718-e0f41b50", "created_at": "2026-11-24T07:07:18+00:00",
        "feature_service": "effort_journey_v2", "features": ["contacts_7d", "complaint_state"],
        "thresholds": {"effort_score": 78.7, "churn_risk": 0.30},
        "threshold_table": [{"share": 0.01, "effort_score": 100.0, "churn_risk": 0.45},
                            {"share": 0.5, "effort_score": 0.0, "churn_risk": 0.0}],
        "churn_calibration": {"x": [0.0, 0.5, 1.0], "y": [0.002, 0.2, 0.998]},
        "priors": {"effort_score": 42, "churn_risk": 0.15},
        "churn_horizon_days": 90, "effort_half_life_days": 3.0, "metrics": {"churn_roc_auc": 0.7},
        "checksums": {"effort.lgb.txt": hashlib.sha256(EFFORT_BYTES).hexdigest(),
                      "churn.lgb.txt": hashlib.sha256(CHURN_BYTES).hexdigest()},
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    """The valid manifest with one field (dotted path) replaced, or removed when value is ...."""
    manifest = copy.deepcopy(_manifest())
    *parents, last = path.split(".")
    node = manifest
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return manifest


def test_the_writers_manifest_is_valid_and_typed() -> None:
    manifest = parse_manifest(_manifest())
    assert isinstance(manifest, Manifest)
    assert manifest.priors.effort_score == 42.0 and manifest.thresholds.churn_risk == 0.30
    assert manifest.threshold_table is not None and manifest.threshold_table[0].share == 0.01


@pytest.mark.parametrize("path", ["threshold_table", "feature_service"])
def test_fields_older_models_lack_may_be_absent(path: str) -> None:
    parse_manifest(_with(path, ...))


@pytest.mark.parametrize(("path", "value", "named"), [
    ("thresholds.effort_score", None, "thresholds.effort_score"),
    ("thresholds.churn_risk", 1.5, "thresholds.churn_risk"),
    ("thresholds.effort_score", float("nan"), "thresholds.effort_score"),
    ("thresholds", None, "thresholds"),
    ("priors.churn_risk", "0.15", "priors.churn_risk"),
    ("priors.effort_score", True, "priors.effort_score"),
    ("priors", [42, 0.15], "priors"),
    ("priors.effort_score", -1, "priors.effort_score"),
    ("threshold_table.0.share", 0, "threshold_table.0.share"),
    ("threshold_table.1.churn_risk", None, "threshold_table.1.churn_risk"),
    ("churn_horizon_days", 0, "churn_horizon_days"),
    ("churn_horizon_days", 90.0, "churn_horizon_days"),
    ("effort_half_life_days", -3.0, "effort_half_life_days"),
    ("effort_half_life_days", float("inf"), "effort_half_life_days"),
    ("churn_calibration.y", [0.1, 0.2], "churn_calibration"),
    ("churn_calibration.x", [1.0, 0.5, 0.0], "churn_calibration"),
    ("churn_calibration.y", [0.1, 0.2, 1.2], "churn_calibration.y.2"),
    ("features", [], "features"),
    ("features", ["contacts_7d", "contacts_7d"], "features"),
    ("version", "../elsewhere", "version"),
    ("version", 7, "version"),
    ("checksums.churn.lgb.txt", ..., "checksums"),
])
def test_a_bad_field_is_refused_by_name(path: str, value: Any, named: str) -> None:
    if path.startswith("checksums."):  # the file name has dots of its own
        manifest = copy.deepcopy(_manifest())
        del manifest["checksums"][path.removeprefix("checksums.")]
    else:
        manifest = _with(path, value)
    with pytest.raises(ManifestError) as refused:
        parse_manifest(manifest)
    assert refused.value.reason == "manifest"
    assert named in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("path", ["priors", "churn_calibration", "checksums", "version"])
def test_a_missing_field_is_named_with_what_to_do(path: str) -> None:
    with pytest.raises(ManifestError, match=f"{path}: Field required.*retrain"):
        parse_manifest(_with(path, ...))


@pytest.mark.parametrize("checksums", [
    {"effort.lgb.txt": "0" * 64, "churn.lgb.txt": "not-a-digest"},
    {"effort.lgb.txt": "0" * 64, "churn.lgb.txt": "0" * 64, "../secret": "0" * 64},
])
def test_checksums_name_both_model_files_by_digest(checksums: dict[str, str]) -> None:
    with pytest.raises(ManifestError, match="checksums"):
        parse_manifest(_with("checksums", checksums))


def _folder(tmp_path: Path, manifest: dict[str, Any] | str) -> Path:
    folder = tmp_path / "20261124-070718-e0f41b50"
    folder.mkdir()
    (folder / "effort.lgb.txt").write_bytes(EFFORT_BYTES)
    (folder / "churn.lgb.txt").write_bytes(CHURN_BYTES)
    (folder / "manifest.json").write_text(
        manifest if isinstance(manifest, str) else json.dumps(manifest))
    return folder


def test_a_folder_whose_files_match_their_checksums_verifies(tmp_path: Path) -> None:
    manifest, raw = verified_manifest(_folder(tmp_path, _manifest()))
    assert manifest.version == raw["version"] and raw["metrics"] == {"churn_roc_auc": 0.7}


def test_a_changed_model_file_is_a_checksum_refusal(tmp_path: Path) -> None:
    folder = _folder(tmp_path, _manifest())
    (folder / "churn.lgb.txt").write_bytes(CHURN_BYTES[:5])
    with pytest.raises(ManifestError, match="checksum mismatch") as refused:
        verified_manifest(folder)
    assert refused.value.reason == "checksum"


@pytest.mark.parametrize(("text", "reason"), [
    ('{"version": ', "manifest"), ("[1, 2]", "manifest"), ("\udcff", "manifest")])
def test_an_unreadable_manifest_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ManifestError) as refused:
        verified_manifest(folder)
    assert refused.value.reason == reason and "\n" not in str(refused.value)


def test_a_folder_without_manifest_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.json") as refused:
        verified_manifest(tmp_path / "nothing-here")
    assert refused.value.reason == "missing"
