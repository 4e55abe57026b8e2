"""The model manifest as serving reads it: a strict schema of the fields it uses, and its checksums."""

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from training.model_folder import CHURN_MODEL, EFFORT_MODEL, MANIFEST, sha256_of

Score = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
MODEL_FILES = (EFFORT_MODEL, CHURN_MODEL)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_PROBLEMS = 3


class ManifestError(ValueError):
    """A manifest that cannot be served; `reason` labels the refusal metric."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Strict(BaseModel):
    """No coercion: a string where a number belongs, or null, is an error, not a guess."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ScorePair(_Strict):
    """An effort score (0-100) and a churn risk (0-1): thresholds or priors."""

    effort_score: Score
    churn_risk: Probability


class ThresholdEntry(ScorePair):
    """Thresholds fitted for one senior share."""

    share: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


class Calibration(_Strict):
    """Churn calibration breakpoints: raw scores x (non-decreasing) to probabilities y."""

    x: list[Finite] = Field(min_length=2)
    y: list[Probability] = Field(min_length=2)

    @model_validator(mode="after")
    def _monotone_pairs(self) -> "Calibration":
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} breakpoints and y {len(self.y)}")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("x must not decrease")
        return self


class Manifest(_Strict):
    """The fields of manifest.json that serving reads; other fields are left alone."""

    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=200)
    features: list[str] = Field(min_length=1)
    feature_service: str | None = None  # models from before feature services lack it
    thresholds: ScorePair
    threshold_table: list[ThresholdEntry] | None = None
    priors: ScorePair
    churn_horizon_days: int = Field(gt=0)
    effort_half_life_days: Finite = Field(gt=0)
    churn_calibration: Calibration
    checksums: dict[str, str]

    @field_validator("features")
    @classmethod
    def _distinct(cls, features: list[str]) -> list[str]:
        if len(set(features)) != len(features):
            raise ValueError("features are listed more than once")
        return features

    @field_validator("checksums")
    @classmethod
    def _both_models(cls, checksums: dict[str, str]) -> dict[str, str]:
        missing = [name for name in MODEL_FILES if name not in checksums]
        if missing:
            raise ValueError(f"no checksum for {', '.join(missing)}")
        for name, digest in checksums.items():
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"{name!r} is not a file of the model folder")
            if not _SHA256.match(digest):
                raise ValueError(f"checksum of {name} is not a SHA-256 hex digest")
        return checksums


def verified_manifest(folder: Path) -> tuple[Manifest, dict[str, Any]]:
    """The checked manifest and its raw form, after verifying every model file's checksum.

    Raises ManifestError with reason `missing`, `manifest` or `checksum`."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ManifestError(f"no {MANIFEST} in model folder {folder}", "missing")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{path} cannot be read: {_first_line(error)}", "manifest") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path} is not a JSON object", "manifest")
    manifest = parse_manifest(raw, path)
    for name, digest in manifest.checksums.items():
        file = folder / name
        try:
            matches = file.is_file() and sha256_of(file) == digest
        except OSError:
            matches = False
        if not matches:
            raise ManifestError(f"checksum mismatch for {file}: the model folder is corrupted",
                                "checksum")
    return manifest, raw


def parse_manifest(raw: dict[str, Any], where: Path | str = MANIFEST) -> Manifest:
    """The manifest checked against the schema; raises ManifestError naming the bad fields."""
    try:
        return Manifest.model_validate(raw)
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in problem['loc']) or 'manifest'}: "
                    f"{problem['msg']}" for problem in error.errors()]
        more = len(problems) - _MAX_PROBLEMS
        summary = "; ".join(problems[:_MAX_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")
        if any(problem["type"] == "missing" for problem in error.errors()):
            summary += ": retrain with this version"
        raise ManifestError(f"{where} is invalid: {summary}", "manifest") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
