"""The served models: a verified model folder's two tree ensembles, calibration and manifest values.

Everything fixed per model folder (trees, explainer tables, thresholds, priors) is built once here
when the folder is loaded; scoring then only walks arrays.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from features.catalog import FEATURE_SERVICE_NAME
from features.domain import ces_to_effort_score
from service.drift import DriftReference, load_reference
from service.manifest import ManifestError, verified_manifest
from service.model_file import ModelFileError, read_model_file
from service.tree_shap import TreeExplainer, UnsupportedModel
from training.model_folder import CHURN_MODEL, EFFORT_MODEL, Calibrator

IDENTITY_OBJECTIVES = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}


class ModelBundleError(RuntimeError):
    """A model folder that cannot be served: missing, corrupted or for other features.

    `reason` labels effort_model_reload_refusals_total: missing, manifest, checksum, features,
    model_file, version_mismatch, pointer, smoke_test, or invalid."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


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
    """Loaded effort and churn models with the manifest they were trained under."""

    version: str
    feature_names: tuple[str, ...]
    thresholds: Thresholds
    # (senior share, thresholds) fitted at training for other senior-agent capacities.
    threshold_table: tuple[tuple[float, Thresholds], ...]
    prior_effort_score: float
    prior_churn_risk: float
    churn_horizon_days: int
    effort_half_life_days: float  # the half-life of effort_events_decayed chosen in training
    folder: Path
    calibrator: Calibrator
    manifest: dict[str, Any]
    effort_explainer: TreeExplainer
    churn_explainer: TreeExplainer
    # Training's distributions of the inputs and scores (service/drift.py); None for folders
    # written before them.
    drift_reference: DriftReference | None = None

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

    def _scores(self, ces: np.ndarray, churn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (ces_to_effort_score(np.clip(ces, 1.0, 7.0)),
                np.clip(self.calibrator.apply(churn), 0.0, 1.0))


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    """LightGBM's binary objective output (sigmoid parameter 1, checked at load)."""
    return np.asarray(1.0 / (1.0 + np.exp(-raw)))


def load_bundle(folder: Path, expected_features: tuple[str, ...] | None = None) -> ModelBundle:
    """Loads and verifies a model folder (manifest schema, checksums, feature schema); raises
    ModelBundleError, whatever goes wrong reading it.

    With `expected_features` (serving) the model must also come from this feature service."""
    try:
        manifest, raw = verified_manifest(folder)
    except ManifestError as error:
        raise ModelBundleError(str(error), error.reason) from None
    features = tuple(manifest.features)
    service = manifest.feature_service
    if expected_features is not None and service != FEATURE_SERVICE_NAME:
        raise ModelBundleError(
            f"model {manifest.version} was trained on feature service {service}; this "
            f"server serves {FEATURE_SERVICE_NAME}: train a model on it", "features")
    if expected_features is not None and features != expected_features:
        missing = sorted(set(expected_features) ^ set(features))
        raise ModelBundleError(
            f"model {manifest.version} was trained on other features than the feature service "
            f"serves (differing: {', '.join(missing) or 'order'})", "features")
    effort_explainer, churn_explainer = _explainers(folder, features)
    thresholds = manifest.thresholds
    return ModelBundle(
        version=manifest.version, feature_names=features,
        thresholds=Thresholds(thresholds.effort_score, thresholds.churn_risk),
        threshold_table=tuple((entry.share, Thresholds(entry.effort_score, entry.churn_risk))
                              for entry in manifest.threshold_table or []),
        prior_effort_score=manifest.priors.effort_score,
        prior_churn_risk=manifest.priors.churn_risk,
        churn_horizon_days=manifest.churn_horizon_days,
        effort_half_life_days=manifest.effort_half_life_days,
        folder=folder,
        calibrator=Calibrator(tuple(manifest.churn_calibration.x),
                              tuple(manifest.churn_calibration.y)),
        manifest=raw, effort_explainer=effort_explainer, churn_explainer=churn_explainer,
        drift_reference=load_reference(folder, manifest.checksums, manifest.version, features),
    )


def _explainers(folder: Path, features: tuple[str, ...]) -> tuple[TreeExplainer, TreeExplainer]:
    """The compiled effort and churn models, checked against the manifest and their objectives."""
    try:
        models = read_model_file(folder / EFFORT_MODEL), read_model_file(folder / CHURN_MODEL)
        if any(model.feature_names != features for model in models):
            raise ModelBundleError(f"model file features differ from the manifest in {folder}",
                                   "model_file")
        explainers = TreeExplainer(models[0]), TreeExplainer(models[1])
    except ModelBundleError:
        raise
    except Exception as error:  # a truncated or garbled file fails anywhere in the parse
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not isinstance(error, ModelFileError | UnsupportedModel):
            detail = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        raise ModelBundleError(f"model in {folder} cannot be served: {detail}",
                               "model_file") from None
    if explainers[0].objective.split()[0] not in IDENTITY_OBJECTIVES:
        raise ModelBundleError(f"effort model in {folder} is not a plain regression model",
                               "model_file")
    if explainers[1].objective != "binary sigmoid:1":
        raise ModelBundleError(f"churn model in {folder} is not binary with sigmoid 1",
                               "model_file")
    return explainers
