"""`effort --version`, `effort config` and bad settings, run as real processes."""

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from service.settings import setting_variables
from tests.helpers import run_effort


def run(*args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`effort ARGS` in `cwd` with only these EFFORT_* variables set."""
    return run_effort(*args, variables=variables, cwd=cwd)


def test_version_is_printed_without_loading_the_stack(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"effort {version('effort')}\n", "")
    probe = ("import sys\nfrom service.cli import main\ntry:\n    main(['--version'])\n"
             "except SystemExit as stop:\n    assert stop.code == 0\n"
             "print(sorted(m for m in ('feast', 'service.settings', 'lightgbm', 'grpc') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, check=True)
    assert loaded.stdout.splitlines()[-1] == "[]"


def test_config_shows_values_sources_and_unknown_variables(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("EFFORT_GRPC_PORT=6000\nEFFORT_LOG_LEVL=debug\n")
    result = run("config", cwd=tmp_path, EFFORT_REDIS_URL="rediss://:hunter2@cache:6380/2",
                 EFFORT_TLS_KEY_FILE="/etc/effort/tls.key", EFFORT_TOKEN="tok-hunter3",
                 EFFORT_GRPC_PROT="1", effort_max_batch="7")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "hunter3" not in result.stdout
    lines = result.stdout.splitlines()
    settings = lines[:len(setting_variables())]
    assert [line.split("=", 1)[0] for line in settings] == list(setting_variables().values())
    for expected in ("EFFORT_GRPC_PORT=6000  (.env)",
                     "EFFORT_REDIS_URL=rediss://:***@cache:6380/2  (environment)",
                     "EFFORT_TLS_KEY_FILE=/etc/effort/tls.key  (environment)",
                     "EFFORT_MAX_BATCH=7  (environment)",
                     "EFFORT_WORKERS=1  (default)",
                     "EFFORT_ROUTING_POLICY=  (default)",
                     "EFFORT_ALLOW_INSECURE=false  (default)"):
        assert expected in settings
    assert lines[len(settings):] == [
        "EFFORT_TOKEN=***  (environment; not a setting: bearer token of `effort score` and "
        "`effort ingest --address`)",
        "unknown, ignored: EFFORT_GRPC_PROT (did you mean EFFORT_GRPC_PORT?)",
        "unknown, ignored: EFFORT_LOG_LEVL in .env (did you mean EFFORT_LOG_LEVEL?)"]


def test_config_as_json(tmp_path: Path) -> None:
    result = run("config", "--json", cwd=tmp_path, EFFORT_GRPC_PORT="6001",
                 EFFORT_REDIS_URL="redis://:hunter2@cache:6379/0", EFFORT_GRPC_PROT="1")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    report = json.loads(result.stdout)
    assert list(report["settings"]) == list(setting_variables().values())
    assert report["settings"]["EFFORT_GRPC_PORT"] == {"value": 6001, "source": "environment"}
    assert report["settings"]["EFFORT_METRICS_HOST"] == {"value": None, "source": "default"}
    assert report["settings"]["EFFORT_ALLOW_INSECURE"] == {"value": False, "source": "default"}
    assert report["settings"]["EFFORT_REDIS_URL"]["value"] == "redis://:***@cache:6379/0"
    assert report["not_settings"] == {}
    assert report["unknown"] == [{"name": "EFFORT_GRPC_PROT", "source": "environment",
                                  "suggestion": "EFFORT_GRPC_PORT"}]


@pytest.mark.parametrize("command", ["config", "serve"])
def test_bad_settings_are_one_block_naming_each(tmp_path: Path, command: str) -> None:
    result = run(command, cwd=tmp_path, EFFORT_GRPC_PORT="70000", EFFORT_LOG_LEVEL="loud")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"effort {command}: invalid settings:",
        "  EFFORT_GRPC_PORT: Input should be less than or equal to 65535 (got '70000')",
        "  EFFORT_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'LOUD')"]


def test_serve_warns_of_unknown_variables_at_start(tmp_path: Path) -> None:
    # No model to serve: the start stops after logging, with one line saying so.
    result = run("serve", cwd=tmp_path, EFFORT_GRPC_PORT="0", EFFORT_METRICS_PORT="0",
                 EFFORT_MODELS_DIR=str(tmp_path / "models"), EFFORT_GRPC_PROT="1",
                 EFFORT_LOG_FORMAT="json")
    assert result.returncode == 1, result.stderr
    warnings = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(w["level"], w["message"]) for w in warnings if w["logger"] == "service.serve"] == [
        ("WARNING", "unknown EFFORT_* variables, ignored: EFFORT_GRPC_PROT "
                    "(did you mean EFFORT_GRPC_PORT?)")]
    assert result.stderr.splitlines()[-1].startswith("effort serve: no promoted model in ")
