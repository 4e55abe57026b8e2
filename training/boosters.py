"""LightGBM's own boosters of a model folder, for comparisons in tests and benchmarks."""

from pathlib import Path

import lightgbm

from training.model_folder import CHURN_MODEL, EFFORT_MODEL


def lightgbm_boosters(folder: Path) -> tuple[lightgbm.Booster, lightgbm.Booster]:
    """The (effort, churn) boosters as LightGBM loads them; serving never does."""
    return (lightgbm.Booster(model_file=str(folder / EFFORT_MODEL)),
            lightgbm.Booster(model_file=str(folder / CHURN_MODEL)))
