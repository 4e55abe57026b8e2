"""Offline history compaction against killed processes and through Feast's point-in-time join."""

import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from features.catalog import FEATURE_SERVICE_NAME, JOIN_KEY
from features.events import ET, Event
from features.history_compaction import PARTS_BEFORE_COMPACTION, compact_history, compacted_history
from features.rows import append_history, feature_record, history_dir, rows_frame
from features.store import apply_definitions, open_store
from training.dataset import training_frame

ROOT = Path(__file__).resolve().parents[2]
START = 1_793_491_200.0  # 2026-11-01T00:00:00Z
ROW_SPACING = 600.0  # seconds between pushed rows: 144 a day

# Pushes single-row parts n, n + 1, ... and prints each n once its append has returned.
PUSHER = f"""
import sys
from pathlib import Path
from features.events import ET, Event
from features.rows import append_history, feature_record, rows_frame
repo, n = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
while True:
    at = {START} + n * {ROW_SPACING}
    state = [Event(f"K{{n}}-e", f"K{{n}}", at - 60.0, ET.EVENT_TYPE_CONTACT, channel=1)]
    append_history(repo, rows_frame([feature_record(f"K{{n}}", state, at)]))
    print(n, flush=True)
    n += 1
"""


def customers_in_history(folder: Path) -> Counter[str]:
    with compacted_history(folder):
        rows = pd.read_parquet(folder)
    return Counter(rows[JOIN_KEY])


def test_pushers_killed_at_random_moments_lose_and_double_no_row(tmp_path: Path) -> None:
    folder = history_dir(tmp_path)
    rng = random.Random(7)
    confirmed: set[str] = set()
    in_flight: set[str] = set()  # rows whose append a kill interrupted: committed or not
    next_row = 0
    for _ in range(10):
        parts = len(list(folder.glob("part-*.parquet")))
        pusher = subprocess.Popen([sys.executable, "-c", PUSHER, str(tmp_path), str(next_row)],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert pusher.stdout is not None
        assert pusher.stdout.readline() == "ready\n"
        # The kill lands in the append that compacts, or soon after: in any step of a merge.
        printed = [int(pusher.stdout.readline())
                   for _ in range(max(0, PARTS_BEFORE_COMPACTION - 1 - parts))]
        time.sleep(rng.uniform(0, 0.1))
        pusher.kill()
        pusher.wait(timeout=30)
        printed += [int(line) for line in pusher.stdout.read().split()]
        confirmed |= {f"K{n}" for n in printed}
        next_row = printed[-1] + 1 if printed else next_row
        in_flight.add(f"K{next_row}")
        next_row += 1

        counts = customers_in_history(folder)
        assert {c for c in confirmed if counts[c] != 1} == set()
        assert {c for c, count in counts.items() if c not in confirmed | in_flight or count > 1} == set()

    compact_history(folder, whole_days=True)
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert all(name.startswith("day-") for name in names)
    assert len({name.split("-")[1] for name in names}) == len(names) >= 2


def test_training_compacts_first_and_feast_joins_the_same_rows(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    apply_definitions(store)
    folder = history_dir(tmp_path)
    for n in range(60):  # 20 customers, a row each 1.2 days: 60 single-row pushes over 3 days
        customer, at = f"C{n % 20:06d}", START + n * 3 * 86_400 / 60
        state = [Event(f"{customer}-{n}", customer, at - 60.0, ET.EVENT_TYPE_CONTACT, channel=1)]
        append_history(tmp_path, rows_frame([feature_record(customer, state, at)]))
    labels = pd.DataFrame({
        JOIN_KEY: pd.array([f"C{n % 20:06d}" for n in range(80)], dtype="string"),
        "event_timestamp": pd.to_datetime([START + 86_400 + n * 3_600 for n in range(80)], unit="s",
                                          utc=True),
        "ces": 4.0, "churned": 0.0})

    def joined() -> pd.DataFrame:
        service = store.get_feature_service(FEATURE_SERVICE_NAME)
        rows = store.get_historical_features(entity_df=labels, features=service).to_df()
        return rows.sort_values([JOIN_KEY, "event_timestamp"]).reset_index(drop=True)

    uncompacted = joined()
    assert uncompacted["window_state"].notna().sum() > 40
    frame = training_frame(store, labels)
    assert len(frame) == len(labels)
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert [name.split("-")[1] for name in names[1:]] == ["20261101", "20261102", "20261103"]
    pd.testing.assert_frame_equal(joined(), uncompacted)

    # A reader that lists the folder without the shared lock, between a merge's rename and its
    # deletions, sees a day file and its parts both: Feast keeps one row per (customer,
    # label_time) in the join, so identical copies of rows change nothing.
    shutil.copy(folder / names[1], folder / "part-copy-of-a-merged-day.parquet")
    pd.testing.assert_frame_equal(joined(), uncompacted)
