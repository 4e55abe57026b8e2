"""The promotion gate: a new model must not be worse than the one serving, on the new test rows.

The incumbent (the CURRENT model folder) scores the new model's churn test rows with its own
trees and calibration. The new model is refused when its ROC-AUC is lower by more than
MAX_AUC_LOSS, or its expected calibration error is above MAX_CALIBRATION_ERROR; `--force`
overrides. With nothing serving yet there is no gate. The comparison goes into the report.
"""

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from training.boosters import lightgbm_boosters
from training.evaluate import expected_calibration_error
from training.model_folder import Calibrator, ModelFolderError, verified_manifest

MAX_AUC_LOSS = 0.005
MAX_CALIBRATION_ERROR = 0.02


def incumbent_metrics(folder: Path, features: tuple[str, ...], x: np.ndarray,
                      churned: np.ndarray, decayed_column: int,
                      decayed_by_half_life: dict[float, np.ndarray]) -> dict[str, Any]:
    """The serving model's churn ROC-AUC and calibration error on these rows, or why there are
    none (another feature set, an unreadable folder). The rows get effort_events_decayed (column
    `decayed_column`) at the incumbent's own half-life, from `decayed_by_half_life`."""
    try:
        manifest = verified_manifest(folder)
    except (ModelFolderError, OSError, ValueError) as error:
        return {"version": folder.name, "comparable": False, "why": str(error)}
    if tuple(manifest.get("features", ())) != features:
        return {"version": manifest.get("version", folder.name), "comparable": False,
                "why": "trained on another feature set"}
    decayed = decayed_by_half_life.get(float(manifest.get("effort_half_life_days", -1.0)))
    if decayed is None:
        return {"version": manifest.get("version", folder.name), "comparable": False,
                "why": "its effort_events_decayed half-life is not among this training's"}
    x = x.copy()
    x[:, decayed_column] = decayed
    raw = np.asarray(lightgbm_boosters(folder)[1].predict(x))
    risk = Calibrator.from_json(manifest["churn_calibration"]).apply(raw)
    return {"version": manifest["version"], "comparable": True,
            "churn_roc_auc": float(roc_auc_score(churned, risk)),
            "calibration_error": expected_calibration_error(risk, churned)}


def refusals(new_roc_auc: float, new_calibration_error: float,
             incumbent: dict[str, Any] | None) -> list[str]:
    """Why the new model may not replace the incumbent; empty when it may, and when nothing is
    serving yet (the first model has only the degenerate-fit check, training/train.py)."""
    if incumbent is None:
        return []
    problems = []
    if new_calibration_error > MAX_CALIBRATION_ERROR:
        problems.append(f"calibration error {new_calibration_error:.3f} is above "
                        f"{MAX_CALIBRATION_ERROR}")
    if incumbent.get("comparable"):
        loss = incumbent["churn_roc_auc"] - new_roc_auc
        if loss > MAX_AUC_LOSS:
            problems.append(f"churn ROC-AUC {new_roc_auc:.3f} is {loss:.3f} below the serving "
                            f"model {incumbent['version']}'s {incumbent['churn_roc_auc']:.3f} on "
                            "the same test rows")
    return problems
