"""`effort train`: load events into the feature store, train both models, write a model folder."""

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from dask.distributed import Client

from service.commands.progress import ProgressBars
from service.settings import Settings
from service.stores import open_stores
from training.dask_engine import local_client
from training.dataset import read_labels
from training.pipeline import TrainingOptions, train_from_files


def _note(line: str) -> None:
    print(line, file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    """Trains, reports the headline metrics on stderr and prints the new version last."""
    settings = Settings()
    read_labels(args.labels)  # check the labels before opening the store
    stores = open_stores(settings)
    bars = ProgressBars()

    def note_after_bar(line: str) -> None:
        bars.close()  # the finished step's bar, so the note gets a line of its own
        _note(line)

    with ExitStack() as cluster:
        client: Any = None
        if args.engine == "dask":
            client = cluster.enter_context(
                Client(args.dask_scheduler) if args.dask_scheduler else local_client())
            _note(f"training on Dask: {client.dashboard_link or client.scheduler.address}")
        options = TrainingOptions(seed=args.seed, senior_share=args.senior_share,
                                  synthetic=args.synthetic, promote=args.promote,
                                  force=args.force, dask_client=client)
        try:
            result = train_from_files(stores.feature_store, stores.recorder, args.events,
                                      args.labels, settings.models_dir, options, bars,
                                      note_after_bar)
        finally:
            bars.close()
    m = result.metrics
    tag = "SYNTHETIC data" if args.synthetic else "your data"
    _note(f"metrics on {tag} (held-out test = 15% of customers): churn ROC-AUC "
          f"{m['churn_roc_auc']:.3f} (rule {m['rule_baseline_roc_auc']:.3f}), lift at senior share "
          f"{m['churn_lift_at_senior_share']:.2f} (rule's lift {m['rule_baseline_lift']:.2f} at "
          f"its own share), effort MAE {m['effort_mae_ces']:.2f} CES points, Spearman "
          f"{m['effort_spearman']:.3f}; plain LightGBM on raw event counts: churn ROC-AUC "
          f"{m['plain_baseline_churn_roc_auc']:.3f}, effort Spearman "
          f"{m['plain_baseline_effort_spearman']:.3f}"
          + (f"; simulator truth: churn ROC-AUC {m['truth_churn_roc_auc']:.3f}, headroom captured "
             f"{m['churn_headroom_captured']:.0%}" if m.get("truth_churn_roc_auc") else ""))
    _note(f"report: {result.folder / 'report.html'}")
    if args.promote:
        _note(f"promoted {result.version} in {settings.models_dir}")
    print(result.version)
