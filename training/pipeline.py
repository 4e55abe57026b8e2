"""`effort train` as a library call: events and labels files in, a trained model folder out."""

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feast import FeatureStore

from features.backfill import load_history
from features.event_files import count_records, read_valid_events
from features.recorder import JourneyRecorder
from training.dataset import read_labels, training_frame
from training.model_folder import sha256_of
from training.registry import current_version, promote
from training.train import TrainResult, train_models

# A progress reporter: given what is being done and how many units (None: unknown), a tick.
Progress = Callable[[str, int | None], Callable[[int], None]]


class TrainingInputError(ValueError):
    """Input files that cannot be trained on."""


class PromotionRefused(RuntimeError):
    """The new model is worse than the serving one (training/promotion_gate.py)."""


@dataclass(frozen=True)
class TrainingOptions:
    """How to train: seed, target senior share, data marking, and an optional Dask client."""

    seed: int
    senior_share: float
    synthetic: bool
    promote: bool
    force: bool = False  # promote even when the promotion gate refuses
    dask_client: Any = None


def train_from_files(store: FeatureStore, recorder: JourneyRecorder, events_path: Path,
                     labels_path: Path, models_dir: Path, options: TrainingOptions,
                     progress: Progress, note: Callable[[str], None]) -> TrainResult:
    """Loads events into the feature store, joins labels point-in-time, trains and writes a folder.

    Labels are checked before any long step; invalid event records are skipped and counted.
    `note` receives a line after each step.
    """
    labels = read_labels(labels_path)
    read = read_valid_events(events_path, progress("reading events", count_records(events_path)))
    if not read.events:
        raise TrainingInputError(f"no valid events in {events_path}" + (
            f"; first problem: {read.first_problem}" if read.first_problem else ""))
    if read.rejected:
        note(f"events: {read.rejected:,} invalid records skipped, the first: {read.first_problem}")
    loaded = load_history(store, recorder, read.events, progress)
    note(f"feature store: {loaded.history_rows:,} offline history rows; {loaded.accepted:,} new "
         f"events, {loaded.duplicates:,} already recorded; {loaded.pushed_customers:,} customers "
         "pushed online")
    frame = training_frame(store, labels)
    note(f"training set: {len(frame):,} label rows joined point-in-time through Feast")
    result = train_models(frame, models_dir, seed=options.seed, synthetic=options.synthetic,
                          senior_share=options.senior_share,
                          data_source=f"{events_path} + {labels_path}",
                          dask_client=options.dask_client, events=read.events,
                          progress=progress, incumbent=serving_folder(models_dir),
                          provenance={"code_commit": code_commit(), "data_fingerprints": {
                              "events": sha256_of(events_path), "labels": sha256_of(labels_path)}})
    if options.promote:
        refused = result.metrics["promotion_refusals"]
        if refused and not options.force:
            raise PromotionRefused(f"model {result.version} was written but not promoted: "
                                   f"{'; '.join(refused)} (see its report; --force promotes "
                                   "anyway)")
        promote(models_dir, result.version)
    return result


def code_commit() -> str | None:
    """The git commit of this checkout (+dirty with uncommitted changes), None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.strip() else "")


def serving_folder(models_dir: Path) -> Path | None:
    """The CURRENT model folder, or None when nothing was promoted."""
    version = current_version(models_dir)
    return models_dir / version if version else None
