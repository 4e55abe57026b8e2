"""`effort models list|promote|rollback|shadow`: the model registry in EFFORT_MODELS_DIR."""

import argparse
import math

from features.catalog import MODEL_FEATURES
from service.reloader import load_served
from service.routing import RoutingPolicy
from service.settings import Settings
from training.registry import (
    check_servable,
    list_versions,
    promote,
    rollback,
    shadow,
    shadow_off,
)


def run(args: argparse.Namespace) -> None:
    """Lists versions, or moves CURRENT or SHADOW and says so."""
    settings = Settings()
    models_dir = settings.models_dir
    if args.action == "list":
        versions = list_versions(models_dir)
        if not versions:
            print(f"no model versions in {models_dir}")
        for v in versions:
            m = v.metrics
            mark = "*" if v.current else "s" if v.shadow else " "
            print(f"{mark} {v.version}  churn AUC "
                  f"{m.get('churn_roc_auc', math.nan):.3f} (rule "
                  f"{m.get('rule_baseline_roc_auc', math.nan):.3f})  effort MAE "
                  f"{m.get('effort_mae_ces', math.nan):.2f}"
                  f"{'  SYNTHETIC data' if v.synthetic_data else ''}"
                  f"{'  (shadow)' if v.shadow else ''}")
    elif args.action == "promote":
        if not args.version:
            raise ValueError("promote needs a VERSION (see `effort models list`)")
        promote(models_dir, args.version)
        print(f"promoted {args.version}; running servers switch within "
              f"EFFORT_MODEL_POLL_SECONDS")
    elif args.action == "shadow":
        _shadow(args, settings)
    else:
        print(f"rolled back to {rollback(models_dir)}")


def _shadow(args: argparse.Namespace, settings: Settings) -> None:
    models_dir = settings.models_dir
    if args.off:
        if args.version:
            raise ValueError("shadow --off takes no VERSION")
        stopped = shadow_off(models_dir)
        print(f"stopped shadowing {stopped}" if stopped else "no shadow was set")
        return
    if not args.version:
        raise ValueError("shadow needs a VERSION (see `effort models list`), or --off")
    check_servable(models_dir, args.version, "shadowed")
    # The checks a server makes before serving a folder: checksums, features, smoke score.
    load_served(models_dir, args.version, MODEL_FEATURES,
                RoutingPolicy.load(settings.routing_policy), settings.max_reasons)
    shadow(models_dir, args.version)
    print(f"shadowing {args.version}; running servers score a share of calls with it "
          "(EFFORT_SHADOW_SHARE) within EFFORT_MODEL_POLL_SECONDS")
