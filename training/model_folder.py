"""The model folder format, owned by its writer: files, manifest, checksums and calibration.

A model folder holds the two LightGBM text models, manifest.json (version, feature list,
thresholds, calibration breakpoints, priors, checksums, metrics), metrics.json, report.html and
reference_distributions.json (training/reference_distributions.py; folders written before it lack
it, and serving then measures no drift).
It is written into a hidden staging folder and renamed into place, so a reader never sees half of
one. Serving reads it through `verified_manifest` (service/models.py) and never imports LightGBM.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MANIFEST = "manifest.json"
METRICS = "metrics.json"
REPORT = "report.html"
REFERENCE = "reference_distributions.json"
EFFORT_MODEL, CHURN_MODEL = "effort.lgb.txt", "churn.lgb.txt"


class ModelFolderError(RuntimeError):
    """A model folder that is missing, corrupted or incomplete."""


class SavableModel(Protocol):
    """What the writer needs of a trained booster."""

    def save_model(self, filename: str) -> Any:
        """Writes the model as text."""
        ...


@dataclass(frozen=True)
class Calibrator:
    """The manifest's churn calibration: a monotone map from raw scores, as breakpoints."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores, interpolated (clamped at both ends)."""
        return np.interp(raw, self.x, self.y)

    def to_json(self) -> dict[str, list[float]]:
        """The breakpoints, as the manifest stores them."""
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> "Calibrator":
        """Inverse of to_json."""
        return cls(tuple(data["x"]), tuple(data["y"]))


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


ReportWriter = Callable[[Path, dict[str, Any], dict[str, Any]], None]


def write_folder(models_dir: Path, created: datetime, effort_model: SavableModel,
                 churn_model: SavableModel, manifest: dict[str, Any], metrics: dict[str, Any],
                 headline: dict[str, Any], write_report: ReportWriter,
                 reference: dict[str, Any] | None = None) -> tuple[str, Path]:
    """Writes a complete model folder and returns (version, folder).

    The version is the creation time plus the churn model's checksum prefix; the manifest gains
    version, headline metrics and checksums (of the models and of the `reference` distributions
    when given, so that serving verifies them too).
    """
    staging = models_dir / f".staging-{created.strftime('%Y%m%d%H%M%S%f')}"
    staging.mkdir(parents=True)
    effort_model.save_model(str(staging / EFFORT_MODEL))
    churn_model.save_model(str(staging / CHURN_MODEL))
    files = [EFFORT_MODEL, CHURN_MODEL]
    if reference is not None:
        (staging / REFERENCE).write_text(json.dumps(reference) + "\n")
        files.append(REFERENCE)
    checksums = {name: sha256_of(staging / name) for name in files}
    version = f"{created.strftime('%Y%m%d-%H%M%S')}-{checksums[CHURN_MODEL][:8]}"
    manifest = {"version": version, **manifest, "metrics": headline, "checksums": checksums}
    (staging / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    write_report(staging / REPORT, manifest, metrics)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    folder = models_dir / version
    staging.rename(folder)
    return version, folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a model folder, unverified (for listings)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelFolderError(f"no {MANIFEST} in model folder {folder}")
    return dict(json.loads(path.read_text()))


def verified_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, after checking that every model file matches its recorded checksum."""
    manifest = read_manifest(folder)
    for name, digest in manifest["checksums"].items():
        path = folder / name
        if not path.is_file() or sha256_of(path) != digest:
            raise ModelFolderError(f"checksum mismatch for {path}: the model folder is corrupted")
    return manifest
