"""Training output: a verified model folder whose churn model beats the rule baseline."""

import json
import shutil
from pathlib import Path

import pytest

from features.catalog import MODEL_FEATURES
from service.model_bundle import ModelBundleError, current_folder, load_bundle
from tests.conftest import DemoWorld


def test_model_folder_is_complete_and_loads(demo_world: DemoWorld) -> None:
    folder = current_folder(demo_world.models_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == demo_world.version == folder.name
    assert manifest["features"] == list(MODEL_FEATURES)
    assert manifest["feature_service"] == "effort_journey_v1"
    assert manifest["synthetic_data"] is True
    assert set(manifest["checksums"]) == {"effort.lgb.txt", "churn.lgb.txt"}
    metrics = manifest["metrics"]
    assert metrics["churn_roc_auc"] > metrics["rule_baseline_roc_auc"]
    assert metrics["effort_spearman"] > 0.5
    assert abs(metrics["senior_share_validation"] - 0.15) < 0.03
    bundle = load_bundle(folder, MODEL_FEATURES)
    assert 0 < bundle.thresholds.churn_risk < 1 and 0 < bundle.thresholds.effort_score < 100


def test_corrupted_model_is_refused(demo_world: DemoWorld, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(current_folder(demo_world.models_dir), copy)
    with (copy / "churn.lgb.txt").open("a") as handle:
        handle.write("\n")
    with pytest.raises(ModelBundleError, match="checksum"):
        load_bundle(copy, MODEL_FEATURES)


def test_model_for_other_features_is_refused(demo_world: DemoWorld) -> None:
    with pytest.raises(ModelBundleError, match="other features"):
        load_bundle(current_folder(demo_world.models_dir), (*MODEL_FEATURES, "shoe_size"))
