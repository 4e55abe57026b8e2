"""An ingest killed mid-file and replayed loses nothing and counts nothing twice."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from features.events import Event
from features.journey import compute_features
from features.state import state_path
from features.store import apply_definitions, open_store
from service.feature_reader import FeastFeatureReader
from tests.helpers import wait_until
from training.simulate import simulate, write_files


def _seen(repo: Path) -> int:
    db = state_path(repo)
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _ingest(path: Path, repo: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "EFFORT_FEATURE_REPO": str(repo)}
    return subprocess.Popen([sys.executable, "-m", "service.cli", "ingest", str(path), "--batch",
                             "250"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)


def test_killed_ingest_replayed_is_exact(tmp_path: Path) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    result = simulate(1500, 45, end, seed=5)
    events_path, _ = write_files(result, tmp_path / "demo")
    repo = tmp_path / "repo"
    apply_definitions(open_store(repo))

    first = _ingest(events_path, repo)
    wait_until(lambda: _seen(repo) >= len(result.events) // 3, 120, "a third of the file",
               poll=0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    recorded_before = _seen(repo)
    assert 0 < recorded_before < len(result.events), "the kill should land mid-file"

    replay = _ingest(events_path, repo)
    output, _ = replay.communicate(timeout=300)
    assert replay.returncode == 0
    counts = re.search(r"([\d,]+) accepted, ([\d,]+) duplicates, ([\d,]+) rejected", output)
    assert counts, output
    accepted, duplicates, rejected = (int(g.replace(",", "")) for g in counts.groups())
    assert (accepted, duplicates, rejected) == (
        len(result.events) - recorded_before, recorded_before, 0)
    assert _seen(repo) == len(result.events)

    by_customer: dict[str, list[Event]] = {}
    for event in result.events:
        by_customer.setdefault(event.customer_id, []).append(event)
    customers = sorted(by_customer)
    rows = FeastFeatureReader(open_store(repo)).read(customers)
    now = time.time()
    for customer_id, row in zip(customers, rows, strict=True):
        assert row is not None, customer_id
        assert compute_features(row.events, now) == compute_features(by_customer[customer_id], now)
