"""Measures what the effort model's monotone constraints cost on the demo (SYNTHETIC): Spearman, MAE."""

import json
import time
from pathlib import Path

import numpy as np

from features.catalog import MODEL_FEATURES
from features.store import open_store
from service.commands.progress import progress_bar
from service.settings import Settings
from training.dataset import DECAYED_FEATURE, half_life_column, read_labels, training_frame
from training.evaluate import effort_metrics, rule_flags
from training.model_folder import sha256_of
from training.registry import current_folder
from training.train import EFFORT_MONOTONE, fit_booster, split_by_customer
from training.tuning import FOLDS, TRIALS, customer_groups

DEMO = Path("var/demo")
SEED = 7  # `effort train`'s default, the promoted demo model's seed


def main() -> None:
    settings = Settings()
    manifest = json.loads((current_folder(settings.models_dir) / "manifest.json").read_text())
    if manifest["data_fingerprints"]["labels"] != sha256_of(DEMO / "labels.csv"):
        raise SystemExit("var/demo/labels.csv is not what the promoted model trained on")
    started = time.perf_counter()
    frame = training_frame(open_store(settings.feature_repo), read_labels(DEMO / "labels.csv"))
    half_life = manifest["effort_half_life_days"]
    # What train_models does before the effort fit: the chosen half-life, the customer split.
    frame[DECAYED_FEATURE] = frame[half_life_column(half_life)]
    x = frame[list(MODEL_FEATURES)].to_numpy(dtype=np.float64)
    ces = frame["ces"].to_numpy(dtype=np.float64)
    customers = frame["customer_id"].astype(str).tolist()
    trained, held_out = split_by_customer(np.ones(len(frame), dtype=bool), customers)
    e_train, e_test = ~np.isnan(ces) & trained, ~np.isnan(ces) & held_out
    groups = customer_groups(customers, FOLDS)
    rule = rule_flags(frame)[e_test]
    print(f"demo training set (SYNTHETIC) through Feast: {len(frame):,} rows, {e_train.sum():,} "
          f"CES train / {e_test.sum():,} test rows, half-life {half_life:g} d, "
          f"{time.perf_counter() - started:.0f} s")
    results = {}
    for name, extra in (("monotone", EFFORT_MONOTONE), ("unconstrained", None)):
        started = time.perf_counter()
        with progress_bar(TRIALS, f"tuning the {name} effort model: trials") as tick:
            model, tuned = fit_booster("regression", x[e_train], ces[e_train], groups[e_train],
                                       SEED, extra, progress=tick)
        predicted = np.clip(np.asarray(model.predict(x[e_test])), 1.0, 7.0)
        results[name] = effort_metrics(predicted, ces[e_test], rule) | {
            "trees": model.num_trees(), "cv_l2": tuned.cv_score}
        print(f"  {name:13s}: test Spearman {results[name]['spearman']:.4f}, MAE "
              f"{results[name]['mae_ces']:.4f} CES points, {model.num_trees()} trees, CV L2 "
              f"{tuned.cv_score:.4f} ({time.perf_counter() - started:.0f} s)")
    mono, free = results["monotone"], results["unconstrained"]
    print(f"cost of the constraints on SYNTHETIC data: Spearman {free['spearman'] - mono['spearman']:+.4f}"
          f" (unconstrained minus monotone; goal <= 0.01), MAE {mono['mae_ces'] - free['mae_ces']:+.4f}"
          f" CES points (monotone minus unconstrained); promoted model: Spearman "
          f"{manifest['metrics']['effort_spearman']:.4f}, MAE {manifest['metrics']['effort_mae_ces']:.4f}")


if __name__ == "__main__":
    main()
