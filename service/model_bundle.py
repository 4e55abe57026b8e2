"""A versioned model folder: LightGBM effort and churn models plus their manifest, verified on load."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.calibration import Calibrator
from service.model_file import ModelFileError, read_model_file
from service.tree_shap import TreeExplainer, UnsupportedModel

MANIFEST = "manifest.json"
EFFORT_MODEL, CHURN_MODEL = "effort.lgb.txt", "churn.lgb.txt"
IDENTITY_OBJECTIVES = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}


class ModelBundleError(RuntimeError):
    """A model folder that cannot be served: missing, corrupted or for other features."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ces_to_effort_score(ces: np.ndarray) -> np.ndarray:
    """DESIGN.md: effort_score = (7 - CES) / 6 x 100, clipped to 0-100."""
    return np.clip((7.0 - ces) / 6.0 * 100.0, 0.0, 100.0)


@dataclass(frozen=True)
class Thresholds:
    """Routing thresholds: at or above either score the contact goes senior."""

    effort_score: float
    churn_risk: float


@dataclass(frozen=True)
class Explained:
    """Both scores and their per-feature TreeSHAP contributions (last column: expected value)."""

    effort_score: np.ndarray
    churn_risk: np.ndarray
    effort_contrib: np.ndarray  # in effort-score direction: positive means more effort
    churn_contrib: np.ndarray   # in log-odds of churn


@dataclass(frozen=True)
class ModelBundle:
    """Loaded effort and churn boosters with the manifest they were trained under."""

    version: str
    feature_names: tuple[str, ...]
    feature_service: str
    thresholds: Thresholds
    prior_effort_score: float
    prior_churn_risk: float
    churn_horizon_days: int
    folder: Path
    calibrator: Calibrator
    manifest: dict[str, Any]
    effort_explainer: TreeExplainer
    churn_explainer: TreeExplainer

    def predict(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(effort_score 0-100, calibrated churn_risk 0-1) for rows in feature_names order."""
        ces = self.effort_explainer.predict_raw(matrix)
        churn = _sigmoid(self.churn_explainer.predict_raw(matrix))
        return self._scores(ces, churn)

    def explain(self, matrix: np.ndarray) -> Explained:
        """Scores with exact TreeSHAP contributions, from one compiled pass over each model."""
        ces, effort_contrib = self.effort_explainer.explain(matrix)
        churn_raw, churn_contrib = self.churn_explainer.explain(matrix)
        effort_score, churn_risk = self._scores(ces, _sigmoid(churn_raw))
        # A lower CES means more effort, so effort contributions flip sign.
        return Explained(effort_score, churn_risk, -effort_contrib, churn_contrib)

    def lightgbm_boosters(self) -> tuple[Any, Any]:
        """LightGBM's own (effort, churn) boosters, for comparisons; serving never loads them."""
        import lightgbm

        return (lightgbm.Booster(model_file=str(self.folder / EFFORT_MODEL)),
                lightgbm.Booster(model_file=str(self.folder / CHURN_MODEL)))

    def _scores(self, ces: np.ndarray, churn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (ces_to_effort_score(np.clip(ces, 1.0, 7.0)),
                np.clip(self.calibrator.apply(churn), 0.0, 1.0))


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    """LightGBM's binary objective output (sigmoid parameter 1, checked at load)."""
    return np.asarray(1.0 / (1.0 + np.exp(-raw)))


def load_bundle(folder: Path, expected_features: tuple[str, ...] | None = None) -> ModelBundle:
    """Loads and verifies a model folder (checksums, feature schema); raises ModelBundleError."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelBundleError(f"no {MANIFEST} in model folder {folder}")
    try:
        manifest = json.loads(manifest_path.read_text())
        for name, digest in manifest["checksums"].items():
            path = folder / name
            if not path.is_file() or sha256_of(path) != digest:
                raise ModelBundleError(f"checksum mismatch for {path}: the model folder is corrupted")
        features = tuple(manifest["features"])
        if expected_features is not None and features != expected_features:
            missing = sorted(set(expected_features) ^ set(features))
            raise ModelBundleError(
                f"model {manifest['version']} was trained on other features than the feature service "
                f"serves (differing: {', '.join(missing) or 'order'})")
        try:
            models = read_model_file(folder / EFFORT_MODEL), read_model_file(folder / CHURN_MODEL)
            if any(model.feature_names != features for model in models):
                raise ModelBundleError(f"model file features differ from the manifest in {folder}")
            explainers = TreeExplainer(models[0]), TreeExplainer(models[1])
        except (ModelFileError, UnsupportedModel) as error:
            raise ModelBundleError(f"model in {folder} cannot be served: {error}") from None
        if explainers[0].objective.split()[0] not in IDENTITY_OBJECTIVES:
            raise ModelBundleError(f"effort model in {folder} is not a plain regression model")
        if explainers[1].objective != "binary sigmoid:1":
            raise ModelBundleError(f"churn model in {folder} is not binary with sigmoid 1")
        thresholds = manifest["thresholds"]
        return ModelBundle(
            version=manifest["version"], feature_names=features,
            feature_service=manifest["feature_service"],
            thresholds=Thresholds(thresholds["effort_score"], thresholds["churn_risk"]),
            prior_effort_score=manifest["priors"]["effort_score"],
            prior_churn_risk=manifest["priors"]["churn_risk"],
            churn_horizon_days=manifest["churn_horizon_days"],
            folder=folder,
            calibrator=Calibrator.from_json(manifest["churn_calibration"]), manifest=manifest,
            effort_explainer=explainers[0], churn_explainer=explainers[1],
        )
    except KeyError as missing:
        raise ModelBundleError(f"manifest in {folder} lacks {missing}: retrain with this version") from None
