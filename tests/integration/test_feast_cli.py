"""The Feast repository works with the feast CLI: plan, apply, materialize-incremental."""

import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from features.backfill import write_backfill
from features.catalog import FEATURE_SERVICE_NAME
from features.events import ET, Event
from features.store import FEATURE_REPO, open_store


def feast(repo: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", "from feast.cli.cli import cli; cli()", *args],
                            cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_plan_apply_materialize_incremental(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    # The Feast repository folder as it is: definitions and YAML, nothing to ignore.
    shutil.copytree(FEATURE_REPO, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    now = time.time()
    events = [Event(f"f{i}", "C000042", now - 3600.0 * (i + 1), ET.EVENT_TYPE_CONTACT, channel=1)
              for i in range(3)]
    write_backfill(open_store(repo), events)  # the offline history the CLI materializes from

    assert "customer_journey" in feast(repo, "plan")
    feast(repo, "apply")
    feast(repo, "materialize-incremental", datetime.now(UTC).isoformat(timespec="seconds"))

    store = open_store(repo)
    online = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE_NAME),
        entity_rows=[{"customer_id": "C000042"}]).to_dict()
    assert online["contacts_24h"] == [3] and online["window_state"][0]
