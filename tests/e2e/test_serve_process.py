"""`effort serve` as a real process: a corrupt CURRENT falls back loudly, JSON logs parse, a taken
port or no valid model stops a start with one readable line."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from tests.helpers import DemoWorld, free_port, wait_serving

COMMAND = [sys.executable, "-m", "service.cli", "serve"]


@dataclass(frozen=True)
class Served:
    """A running `effort serve` process and where its log goes."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str]

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


def _env(models_dir: Path, repo: Path, port: int) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EFFORT_")}
    return {**clean, "EFFORT_GRPC_HOST": "127.0.0.1", "EFFORT_GRPC_PORT": str(port),
            "EFFORT_METRICS_PORT": str(free_port()), "EFFORT_FEATURE_REPO": str(repo),
            "EFFORT_MODELS_DIR": str(models_dir), "EFFORT_MODEL_POLL_SECONDS": "0.2",
            "EFFORT_LOG_FORMAT": "json", "EFFORT_DRAIN_SECONDS": "0"}


@pytest.fixture(scope="module")
def served(demo_world: DemoWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`effort serve` with JSON logs over a models folder whose CURRENT is garbage."""
    root = tmp_path_factory.mktemp("serve-process")
    models = root / "models"
    shutil.copytree(demo_world.models_dir, models)
    (models / "CURRENT").write_bytes(b"\xff\xfe\x00 not a version\n")
    port = free_port()
    log = root / "stderr.log"
    env = _env(models, demo_world.repo, port)
    with log.open("wb") as stderr:
        process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    running = Served(process, port, log, env)
    try:
        wait_serving(running.port, running.process, log=running.log)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _json_lines(served: Served) -> list[dict[str, Any]]:
    return [json.loads(line) for line in served.log_lines()]


def test_a_corrupt_current_serves_the_previous_promotion_with_one_warning(
        served: Served, demo_world: DemoWorld) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        answer = sgrpc.ScoringServiceStub(channel).Score(spb.ScoreRequest(customer_id="C000001"),
                                                        timeout=10)
    assert answer.model_version == demo_world.version
    time.sleep(1.5)  # several polls of the unreadable CURRENT
    reloader = [line for line in _json_lines(served) if line["logger"] == "service.reloader"]
    assert [line["level"] for line in reloader] == ["WARNING"], reloader
    assert "CURRENT" in reloader[0]["message"] and \
        f"serving {demo_world.version}, the newest valid earlier promotion" in reloader[0]["message"]


def test_json_log_lines_parse(served: Served, demo_world: DemoWorld) -> None:
    lines = _json_lines(served)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["level"] == "INFO" and f"serving model {demo_world.version} on 127.0.0.1:"
               f"{served.port} (plaintext, no authentication)" in line["message"]
               for line in lines), lines


def test_a_second_server_on_the_same_port_exits_with_one_line(served: Served,
                                                                demo_world: DemoWorld) -> None:
    env = {**served.env, "EFFORT_METRICS_PORT": str(free_port())}
    second = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert second.stderr.strip().splitlines() == [
        f"effort serve: gRPC port {served.port} on 127.0.0.1 is already in use by another "
        "process (another Effort server?); stop it or set EFFORT_GRPC_PORT"], second.stderr
    assert served.process.poll() is None  # the first one keeps serving


def test_no_valid_model_at_all_is_one_line(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "CURRENT").write_text("20991231-235959-deadbeef\n")
    result = subprocess.run(COMMAND, env=_env(models, tmp_path / "repo", free_port()),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"effort serve: no manifest.json in model folder {models / '20991231-235959-deadbeef'}"]
