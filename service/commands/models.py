"""`effort models list|promote|rollback`: the model registry in EFFORT_MODELS_DIR."""

import argparse
import math

from service.settings import Settings
from training.registry import list_versions, promote, rollback


def run(args: argparse.Namespace) -> None:
    """Lists versions, or moves CURRENT and says so."""
    models_dir = Settings().models_dir
    if args.action == "list":
        versions = list_versions(models_dir)
        if not versions:
            print(f"no model versions in {models_dir}")
        for v in versions:
            m = v.metrics
            print(f"{'*' if v.current else ' '} {v.version}  churn AUC "
                  f"{m.get('churn_roc_auc', math.nan):.3f} (rule "
                  f"{m.get('rule_baseline_roc_auc', math.nan):.3f})  effort MAE "
                  f"{m.get('effort_mae_ces', math.nan):.2f}"
                  f"{'  SYNTHETIC data' if v.synthetic_data else ''}")
    elif args.action == "promote":
        if not args.version:
            raise ValueError("promote needs a VERSION (see `effort models list`)")
        promote(models_dir, args.version)
        print(f"promoted {args.version}; running servers switch within "
              f"EFFORT_MODEL_POLL_SECONDS")
    else:
        print(f"rolled back to {rollback(models_dir)}")
