"""Measures `effort train` on a copy of the demo before and after 1,000 single-event RecordEvents calls."""

import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from effort.v1 import journey_service_pb2 as jpb
from features.domain import SENIOR_SHARE
from features.rows import history_dir
from service.settings import Settings
from service.stores import Stores, open_stores
from training.pipeline import TrainingOptions, train_from_files

CALLS = 1_000
GOAL_RATIO = 1.2  # issue 11 item 9: 1,000 calls change train time by at most 20%
EVENTS = Path("var/demo/events.jsonl")
LABELS = Path("var/demo/labels.csv")


def quiet_progress(what: str, total: int | None) -> Callable[[int], None]:
    return lambda done: None


def train_seconds(stores: Stores, models_dir: Path) -> float:
    """Wall time of what `effort train --synthetic` does (no promotion), on these stores."""
    options = TrainingOptions(seed=7, senior_share=SENIOR_SHARE, synthetic=True, promote=False)
    started = time.perf_counter()
    train_from_files(stores.feature_store, stores.recorder, EVENTS, LABELS, models_dir, options,
                     quiet_progress, lambda line: print(f"    {line}", flush=True))
    return time.perf_counter() - started


def single_event_calls(stores: Stores, calls: int) -> list[float]:
    """Seconds of each of `calls` RecordEvents-equivalent calls of one new contact each."""
    run = uuid.uuid4().hex[:8]
    seconds = []
    for n in range(calls):
        event = jpb.JourneyEvent(event_id=f"history-bench-{run}-{n}", customer_id=f"C{n % 10_000 + 1:06d}",
                                 type=jpb.EVENT_TYPE_CONTACT, channel=1)  # type: ignore[arg-type]
        event.occurred_at.GetCurrentTime()
        started = time.perf_counter()
        outcome = stores.recorder.record([event])  # what JourneyService.RecordEvents runs
        seconds.append(time.perf_counter() - started)
        assert outcome.accepted == 1, outcome
    return seconds


def history_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def main() -> None:
    if not (EVENTS.is_file() and LABELS.is_file()):
        raise SystemExit("no demo data: run `make demo` first")
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "feast_repo"
        print(f"copying the demo's feature repo {Settings().feature_repo} to {repo}", flush=True)
        shutil.copytree(Settings().feature_repo, repo, ignore=shutil.ignore_patterns("__pycache__"))
        stores = open_stores(Settings(feature_repo=repo, models_dir=Path(scratch) / "models"))
        folder = history_dir(repo)
        print(f"history folder: {len(history_files(folder))} files", flush=True)
        print("train, warm-up (not counted):", flush=True)
        warm_up = train_seconds(stores, Path(scratch) / "models")
        print(f"  {warm_up:.1f} s; history folder: {history_files(folder)}", flush=True)
        print("train, before the calls:", flush=True)
        before = train_seconds(stores, Path(scratch) / "models")
        print(f"  {before:.1f} s", flush=True)
        print(f"{CALLS:,} single-event RecordEvents calls (recorder.record, flush on) ...", flush=True)
        calls = single_event_calls(stores, CALLS)
        after_calls = history_files(folder)
        print(f"  {sum(calls):.1f} s: median {statistics.median(calls) * 1000:.1f} ms, slowest "
              f"{max(calls) * 1000:.0f} ms; history folder: {len(after_calls)} files: "
              f"{sum(name.startswith('part-') for name in after_calls)} parts, "
              f"{sum(name.startswith('day-') for name in after_calls)} day files, backfill",
              flush=True)
        print("train, after the calls:", flush=True)
        after = train_seconds(stores, Path(scratch) / "models")
        print(f"  {after:.1f} s; history folder: {history_files(folder)}", flush=True)
        stores.state.close()
    ratio = after / before
    print(f"effort train: {before:.1f} s before, {after:.1f} s after {CALLS:,} calls: ratio "
          f"{ratio:.3f} (goal <= {GOAL_RATIO}: {'met' if ratio <= GOAL_RATIO else 'NOT met'})")


if __name__ == "__main__":
    main()
