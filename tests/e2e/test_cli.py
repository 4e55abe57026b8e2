"""`effort` commands run for real: bad input gives one readable line and a non-zero exit."""

import os
import subprocess
import sys
from pathlib import Path

from features.store import apply_definitions, open_store


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=None)


def test_labels_with_a_missing_column_name_it(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("customer_id,label_time,ces\nC000001,2026-01-01T00:00:00Z,5\n")
    events = tmp_path / "events.jsonl"
    events.write_text("")
    result = run("train", "--events", str(events), "--labels", str(labels))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"effort train: labels file {labels} lacks column 'churned' "
        "(expected customer_id, label_time, ces, churned)"]


def test_score_against_no_server_is_one_line() -> None:
    result = run("score", "C000001", "--address", "127.0.0.1:1", "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("effort score: ") and "Traceback" not in result.stderr


def test_ingest_accounts_for_every_record(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    good = ('{"eventId":"i1","customerId":"C9","occurredAt":"2026-11-01T10:00:00Z",'
            '"type":"EVENT_TYPE_CONTACT","channel":"CHANNEL_CHAT"}')
    events.write_text("\n".join([good, good, '{"eventId":"i2"}', "not json"]) + "\n")
    env = {**os.environ, "EFFORT_FEATURE_REPO": str(tmp_path / "repo")}
    apply_definitions(open_store(tmp_path / "repo"))
    result = subprocess.run([sys.executable, "-m", "service.cli", "ingest", str(events)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "1 accepted, 1 duplicates, 2 rejected" in result.stdout
    assert "record 3: customer_id" in result.stdout and "record 4: line" in result.stdout
