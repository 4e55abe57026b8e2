"""Model faults under load in a served process: 20 promotions back and forth, corrupt folders and pointers."""

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_reload import (
    Change,
    _bad_copy,
    _misnamed_folder,
    _null_threshold,
    _string_priors,
    _truncated_model,
)
from tests.e2e.test_serve_process import COMMAND
from tests.faults.served import POLL_SECONDS, ScoreLoad, ServedProcess
from tests.faults.tally import FaultTally
from tests.helpers import wait_until
from training.registry import CURRENT_POINTER, promote

SWAPS = 20
REFUSALS = "effort_model_reload_refusals_total"
RELOADS = "effort_model_reloads_total"
CLI_COMMAND = [*COMMAND[:-1], "models", "promote"]  # `effort models promote VERSION`


def _unchanged(folder: Path, manifest: dict[str, Any], original: str) -> None:
    """A faithful copy under another version name (a second model that loads like the first)."""


def _point_current(models_dir: Path, content: bytes) -> None:
    """Writes CURRENT atomically, as the registry does, with any content."""
    tmp = models_dir / ".CURRENT.fault"
    tmp.write_bytes(content)
    tmp.replace(models_dir / CURRENT_POINTER)


@pytest.mark.slow
def test_twenty_promotions_under_load_answer_every_call(fault_server: ServedProcess,
                                                        tally: FaultTally) -> None:
    """Promotions alternate between two versions while Score calls flow; every call answers OK,
    each promotion is one swap, and answers come from both versions."""
    calls = tally.scenario("20 model swaps under load")
    models, original = fault_server.models_dir, fault_server.version
    twin = f"{original}-twin"
    _bad_copy(models, original, twin, _unchanged)
    swapped = fault_server.metric(RELOADS, outcome="swapped")
    refused = fault_server.metric(RELOADS, outcome="refused")
    try:
        with ScoreLoad(fault_server.address, calls) as load:
            load.wait_calls(20)
            for n in range(SWAPS):
                target = twin if n % 2 == 0 else original
                answered = load.versions[target]
                if n == 0:  # the first through the command operators use, the rest in-process
                    subprocess.run([*CLI_COMMAND, target], env=fault_server.env, check=True,
                                   capture_output=True, timeout=120)
                else:
                    promote(models, target)
                fault_server.wait_metric(RELOADS, swapped + n + 1, outcome="swapped")
                wait_until(lambda: load.versions[target] > answered, 15,  # noqa: B023
                           f"an answer from {target}")
            load.wait_calls(20)
    finally:
        _point_current(models, f"{original}\n".encode())
    assert load.failures == [], load.failures[:5]
    assert set(load.versions) == {original, twin}, load.versions
    assert load.last_version == original
    assert fault_server.metric(RELOADS, outcome="refused") == refused
    assert fault_server.metric(RELOADS, outcome="swapped") == swapped + SWAPS


# A change to the copied folder after its manifest is written: (folder, original version).
AfterWrite = Callable[[Path, str], None]


def _nan_threshold(folder: Path, manifest: dict[str, Any], original: str) -> None:
    manifest["thresholds"]["churn_risk"] = float("nan")  # json writes NaN, json.loads reads it


def _calibration_decreasing(folder: Path, manifest: dict[str, Any], original: str) -> None:
    manifest["churn_calibration"]["x"] = list(reversed(manifest["churn_calibration"]["x"]))


def _zero_horizon(folder: Path, manifest: dict[str, Any], original: str) -> None:
    manifest["churn_horizon_days"] = 0


def _no_priors(folder: Path, manifest: dict[str, Any], original: str) -> None:
    del manifest["priors"]


def _model_changed_checksum_kept(folder: Path, original: str) -> None:
    with (folder / "effort.lgb.txt").open("ab") as model:
        model.write(b"\n")


def _model_missing(folder: Path, original: str) -> None:
    (folder / "churn.lgb.txt").unlink()


def _model_garbage_checksum_updated(folder: Path, original: str) -> None:
    garbage = os.urandom(4096)
    (folder / "effort.lgb.txt").write_bytes(garbage)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["checksums"]["effort.lgb.txt"] = hashlib.sha256(garbage).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _manifest_bytes(content: bytes) -> AfterWrite:
    def write(folder: Path, original: str) -> None:
        (folder / "manifest.json").write_bytes(content)
    return write


def _manifest_truncated(folder: Path, original: str) -> None:
    text = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").write_bytes(text[:len(text) // 2])


# (name, change to the manifest, change after it is written, refusal reason)
FOLDER_CORRUPTIONS: list[tuple[str, Change, AfterWrite | None, str]] = [
    ("null threshold", _null_threshold, None, "manifest"),
    ("wrong-type priors", _string_priors, None, "manifest"),
    ("NaN threshold", _nan_threshold, None, "manifest"),
    ("calibration decreasing", _calibration_decreasing, None, "manifest"),
    ("churn horizon 0", _zero_horizon, None, "manifest"),
    ("priors missing", _no_priors, None, "manifest"),
    ("manifest garbage bytes", _unchanged, _manifest_bytes(b"\x00\xff garbage \xfe"), "manifest"),
    ("manifest empty", _unchanged, _manifest_bytes(b""), "manifest"),
    ("manifest a JSON list", _unchanged, _manifest_bytes(b"[1, 2, 3]"), "manifest"),
    ("manifest truncated", _unchanged, _manifest_truncated, "manifest"),
    ("model changed, checksum kept", _unchanged, _model_changed_checksum_kept, "checksum"),
    ("model file missing", _unchanged, _model_missing, "checksum"),
    ("truncated model, checksum updated", _truncated_model, None, "model_file"),
    ("garbage model, checksum updated", _unchanged, _model_garbage_checksum_updated, "model_file"),
    ("folder name not the version", _misnamed_folder, None, "version_mismatch"),
]
# (name, what CURRENT holds, refusal reason, the name the refusal is logged under)
POINTER_CORRUPTIONS: list[tuple[str, bytes, str, str]] = [
    ("CURRENT garbage bytes", b"\xff\xfe\x00 not a version\n", "pointer", CURRENT_POINTER),
    ("CURRENT empty", b"", "pointer", CURRENT_POINTER),
    ("CURRENT a path", b"../models\n", "pointer", CURRENT_POINTER),
    ("CURRENT names a missing folder", b"20991231-235959-deadbeef\n", "missing",
     "20991231-235959-deadbeef"),
]


def _refused_once_while_serving(served: ServedProcess, tally: FaultTally, corrupt: Callable[[], None],
                                reason: str, refused_name: str) -> None:
    """Applies `corrupt` under load; the refusal is counted and logged once, every call answers
    from the old model, and CURRENT is put back afterwards."""
    calls = tally.scenario("corrupt models while serving")
    by_reason = served.metric(REFUSALS, reason=reason)
    refused = served.metric(RELOADS, outcome="refused")
    swapped = served.metric(RELOADS, outcome="swapped")
    log_line = f"refused model {refused_name} "
    logged = served.log_text().count(log_line)
    try:
        with ScoreLoad(served.address, calls) as load:
            load.wait_calls(10)
            corrupt()
            served.wait_metric(REFUSALS, by_reason + 1, reason=reason)
            time.sleep(4 * float(POLL_SECONDS))  # several more polls of the refused model
            load.wait_calls(20)
    finally:
        _point_current(served.models_dir, f"{served.version}\n".encode())
    assert served.metric(REFUSALS, reason=reason) == by_reason + 1  # refused once, not retried
    assert served.metric(RELOADS, outcome="refused") == refused + 1
    assert served.metric(RELOADS, outcome="swapped") == swapped
    assert served.log_text().count(log_line) == logged + 1
    assert load.failures == [], load.failures[:5]
    assert set(load.versions) == {served.version}, load.versions


@pytest.mark.parametrize(("change", "after", "reason"), [c[1:] for c in FOLDER_CORRUPTIONS],
                         ids=[c[0] for c in FOLDER_CORRUPTIONS])
def test_a_corrupt_model_folder_is_refused_once_and_the_old_keeps_serving(
        fault_server: ServedProcess, tally: FaultTally, request: pytest.FixtureRequest,
        change: Change, after: AfterWrite | None, reason: str) -> None:
    models, original = fault_server.models_dir, fault_server.version
    name = "corrupt-" + "".join(c if c.isalnum() else "-" for c in request.node.callspec.id)

    def corrupt() -> None:
        folder = _bad_copy(models, original, name, change)
        if after is not None:
            after(folder, original)
        _point_current(models, f"{name}\n".encode())  # promote() itself refuses some of them

    _refused_once_while_serving(fault_server, tally, corrupt, reason, name)


@pytest.mark.parametrize(("content", "reason", "refused_name"),
                         [c[1:] for c in POINTER_CORRUPTIONS], ids=[c[0] for c in POINTER_CORRUPTIONS])
def test_a_corrupt_current_is_refused_once_and_the_old_keeps_serving(
        fault_server: ServedProcess, tally: FaultTally, content: bytes, reason: str,
        refused_name: str) -> None:
    _refused_once_while_serving(fault_server, tally,
                                lambda: _point_current(fault_server.models_dir, content), reason,
                                refused_name)
