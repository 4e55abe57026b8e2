"""Start-up pieces without a model: the CURRENT pointer, PROMOTIONS, folder fingerprints, the port
check, the log formats and their settings, and the feature reader's log lines."""

import io
import json
import logging
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from service.feature_reader import FeastFeatureReader, FeatureStoreUnavailable
from service.logs import JsonFormatter, configure_logging
from service.models import ModelBundleError
from service.reloader import fingerprint, pointed_version, promotions
from service.server import ensure_port_free
from service.settings import Settings


def test_current_names_a_version(tmp_path: Path) -> None:
    assert pointed_version(tmp_path) is None  # nothing promoted yet
    (tmp_path / "CURRENT").write_text("20261124-070718-e0f41b50\n")
    assert pointed_version(tmp_path) == "20261124-070718-e0f41b50"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"", b"\n", b"../../etc\n",
                                     b"two versions\n", b".staging-1\n"])
def test_a_corrupt_current_is_a_pointer_refusal(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "CURRENT").write_bytes(content)
    with pytest.raises(ModelBundleError) as refused:
        pointed_version(tmp_path)
    assert refused.value.reason == "pointer" and "\n" not in str(refused.value)


def test_an_unreadable_current_is_a_pointer_refusal(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").mkdir()
    with pytest.raises(ModelBundleError, match="cannot be read") as refused:
        pointed_version(tmp_path)
    assert refused.value.reason == "pointer"


def test_promotions_newest_first_each_once(tmp_path: Path) -> None:
    assert promotions(tmp_path) == []
    (tmp_path / "PROMOTIONS").write_text("a\nb\na\nc\n")
    assert promotions(tmp_path) == ["c", "a", "b"]
    (tmp_path / "PROMOTIONS").write_bytes(b"\xff\xfe")
    assert promotions(tmp_path) == []


def test_a_folder_fingerprint_changes_with_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    assert fingerprint(folder) is None
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    before = fingerprint(folder)
    assert before == fingerprint(folder)
    (folder / "manifest.json").write_text('{"version": "v1"}')
    assert fingerprint(folder) != before


def test_a_taken_port_is_one_readable_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"gRPC port {port} on 127.0.0.1 is already in use"):
            ensure_port_free("127.0.0.1", port)
    ensure_port_free("127.0.0.1", port)  # free again
    ensure_port_free("127.0.0.1", 0)


def test_log_settings_accept_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().log_level, Settings().log_format) == ("INFO", "text")
    monkeypatch.setenv("EFFORT_LOG_LEVEL", "warning")
    monkeypatch.setenv("EFFORT_LOG_FORMAT", "JSON")
    assert (Settings().log_level, Settings().log_format) == ("WARNING", "json")
    monkeypatch.setenv("EFFORT_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()


def test_json_log_lines_are_single_json_objects() -> None:
    record = logging.LogRecord("service.reloader", logging.ERROR, __file__, 1,
                               "refused model %s:\n%s", ("v2", "two\nlines"), None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "ERROR" and parsed["logger"] == "service.reloader"
    assert parsed["message"] == "refused model v2:\ntwo\nlines" and "ValueError" in parsed["exception"]


def test_configure_logging_writes_the_chosen_format(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handlers, level, feast_level = root.handlers[:], root.level, logging.getLogger("feast").level
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    try:
        configure_logging("INFO", "json")
        logging.getLogger("service.test").info("now serving model %s", "v1")
        logging.getLogger("service.test").debug("not written")
        configure_logging("WARNING", "text")
        logging.getLogger("service.test").info("not written either")
        logging.getLogger("service.test").warning("circuit open")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("feast").setLevel(feast_level)
        logging.captureWarnings(False)
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["message"] == "now serving model v1"
    assert second.endswith("service.test: circuit open") and " WARNING " in second


class _Provider:
    """An online store that fails while `down` is set."""

    def __init__(self) -> None:
        self.down = True

    def online_read(self, config: Any, view: Any, keys: list[Any], fields: list[str]) -> list[Any]:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return [(None, None) for _ in keys]


def test_store_faults_and_breaker_changes_log_one_line_each(
        caplog: pytest.LogCaptureFixture) -> None:
    provider = _Provider()
    store = SimpleNamespace(get_feature_view=lambda name: None, _get_provider=lambda: provider,
                            config=SimpleNamespace(online_store=SimpleNamespace(type="sqlite")))
    reader = FeastFeatureReader(store, failures_to_open=3, open_seconds=0.2)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="service.feature_reader")
    for _ in range(5):  # three failures open the circuit; two more are refused by it
        with pytest.raises(FeatureStoreUnavailable):
            reader.read(["C000001"])
    time.sleep(0.3)
    provider.down = False
    assert reader.read(["C000001"]) == [None]
    assert reader.read(["C000002"]) == [None]
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == ["WARNING"] * 5 + ["INFO"], lines
    assert all("ConnectionError" in m for _, m in lines[:3])
    assert "circuit open after 3 failed" in lines[3][1] and "half-open" in lines[4][1]
    assert "circuit closed" in lines[5][1]
    assert not any("C00000" in message for _, message in lines)
