"""`effort train` on a user's own files: Parquet events and labels in the documented schema, and
clear one-line errors naming the column when the schema is wrong."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from training.model_folder import sha256_of
from training.simulate import simulate


def _effort(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EFFORT_FEATURE_REPO": str(tmp_path / "repo"),
           "EFFORT_MODELS_DIR": str(tmp_path / "models")}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def parquet_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A separately generated data set (other seed, other period) written as Parquet."""
    root = tmp_path_factory.mktemp("own")
    result = simulate(3000, 200, datetime(2026, 6, 30, tzinfo=UTC), seed=2024)
    events = pd.DataFrame.from_records([json.loads(e.to_json()) for e in result.events])
    for column in ("occurredAt", "customerSince"):
        events[column] = pd.to_datetime(events[column], utc=True, format="ISO8601")
    events.to_parquet(root / "events.parquet", index=False)
    labels = pd.DataFrame.from_records(result.labels)
    labels["label_time"] = pd.to_datetime(labels["label_time"], utc=True, format="ISO8601")
    labels["ces"] = pd.to_numeric(labels["ces"].replace("", None))
    labels["churned"] = labels["churned"].map({"true": True, "false": False, "": None})
    labels.to_parquet(root / "labels.parquet", index=False)
    return root / "events.parquet", root / "labels.parquet"


def test_train_on_parquet_files_promotes_a_model_that_beats_the_rule(
        parquet_data: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = parquet_data
    result = _effort(tmp_path, "train", "--events", str(events), "--labels", str(labels),
                     "--promote")
    assert result.returncode == 0, result.stderr[-3000:]
    version = result.stdout.strip().splitlines()[-1]
    assert (tmp_path / "models" / "CURRENT").read_text().strip() == version
    manifest = json.loads((tmp_path / "models" / version / "manifest.json").read_text())
    assert manifest["synthetic_data"] is False
    metrics = manifest["metrics"]
    assert metrics["churn_roc_auc"] > metrics["rule_baseline_roc_auc"]
    assert metrics["churn_lift_at_senior_share"] > metrics["rule_baseline_lift"]
    # Provenance: the exact input files and the code that trained on them.
    assert manifest["data_fingerprints"] == {"events": sha256_of(events), "labels": sha256_of(labels)}
    assert len(str(manifest["code_commit"]).split("+")[0]) == 40


def test_events_missing_a_column_name_it(parquet_data: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = parquet_data
    broken = tmp_path / "broken.parquet"
    pd.read_parquet(events).drop(columns=["occurredAt"]).to_parquet(broken, index=False)
    result = _effort(tmp_path, "train", "--events", str(broken), "--labels", str(labels))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("effort train: ") and "'occurred_at'" in last
    assert "Traceback" not in result.stderr


def test_events_with_no_valid_record_say_why(parquet_data: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    _, labels = parquet_data
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event": "x", "customer": "C1"}\n')
    result = _effort(tmp_path, "train", "--events", str(bad), "--labels", str(labels))
    assert result.returncode == 1
    assert "no valid events" in result.stderr and "record 1" in result.stderr
