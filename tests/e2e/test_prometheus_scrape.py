"""A real Prometheus server (Debian's `prometheus`) scrapes `effort serve` under some traffic and
evaluates monitoring/prometheus's rules: every rule evaluates without error, and every metric a
rule or the dashboard names exists on the metrics page from the start (label values initialised)."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.events import Event
from tests.e2e.test_serve_process import COMMAND, _env
from tests.helpers import DemoWorld, free_port, wait_serving, wait_until
from tests.monitoring_names import dashboard_metric_names, rule_metric_names

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus"

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus is not installed (make test installs it)")


def _get(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=10).read().decode())


@pytest.fixture(scope="module")
def scraped(demo_world: DemoWorld, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, str]]:
    """(metrics page text before any call, Prometheus base URL) with `effort serve` under
    traffic and Prometheus scraping it every second."""
    root = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    env = _env(demo_world.models_dir, demo_world.repo, port)
    metrics_port = int(env["EFFORT_METRICS_PORT"])
    log = root / "effort.log"
    with log.open("wb") as stderr:
        effort = subprocess.Popen(COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        wait_serving(port, effort, log=log)
        page = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                      timeout=10).read().decode()
        config = root / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in sorted(RULES.glob("*_rules.yml"))],
            "scrape_configs": [{"job_name": "effort", "static_configs": [
                {"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
        web = free_port()
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{web}"],
            stdout=subprocess.DEVNULL, stderr=(root / "prometheus.log").open("wb"))
        base = f"http://127.0.0.1:{web}"
        _traffic(f"127.0.0.1:{port}")

        def scraped_twice() -> bool:
            try:
                answer = _query(base, 'count_over_time(up{job="effort"}[1m])')
            except OSError:
                return False
            return bool(answer) and float(answer[0]["value"][1]) >= 2

        wait_until(scraped_twice, 60, "Prometheus to scrape effort twice", poll=0.5)
        _traffic(f"127.0.0.1:{port}")
        time.sleep(3)  # a few rule evaluations over the traffic
        yield page, base
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        effort.terminate()
        effort.wait(timeout=60)


def _query(base: str, expression: str) -> list[dict[str, Any]]:
    answer = _get(f"{base}/api/v1/query?query={urllib.parse.quote(expression)}")
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def _traffic(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        score = sgrpc.ScoringServiceStub(channel)
        for n in range(1, 40):
            score.Score(spb.ScoreRequest(customer_id=f"C{n:06d}", channel="CHANNEL_VOICE"),
                        timeout=10)
        score.ScoreBatch(spb.ScoreBatchRequest(requests=[
            spb.ScoreRequest(customer_id=f"C{n:06d}") for n in range(1, 50)]), timeout=30)
        with pytest.raises(grpc.RpcError):
            score.Score(spb.ScoreRequest(customer_id="not valid"), timeout=10)
        events = [Event(f"scrape-{time.time_ns()}-{n}", "C000007", time.time() - 30, 1,
                        channel=1).to_proto() for n in range(5)]
        jgrpc.JourneyServiceStub(channel).RecordEvents(
            jpb.RecordEventsRequest(events=events), timeout=30)


# Read from HAProxy's stats socket, so on the page only with EFFORT_OVERLOAD_GUARD (the served
# process here runs without it; tests/e2e/test_overload_guard.py scrapes them).
GUARD_ONLY = {"effort_guard_shed_total", "effort_guard_score_in_flight",
              "effort_guard_score_queued"}


def _names_on(page: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(page)
            for sample in family.samples}


def test_every_metric_the_rules_and_dashboard_use_is_on_the_page_from_the_start(
        scraped: tuple[str, str]) -> None:
    page, _ = scraped
    exported = _names_on(page)
    wanted = rule_metric_names() | dashboard_metric_names()
    assert len(wanted) > 20, wanted
    missing = sorted(name for name in wanted - {"up"} - GUARD_ONLY if name not in exported)
    assert not missing, f"named in rules or the dashboard but not exported at start: {missing}"


def test_prometheus_scrapes_and_evaluates_every_rule_without_error(
        scraped: tuple[str, str]) -> None:
    _, base = scraped
    groups = _get(f"{base}/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    files = {Path(group["file"]).name for group in groups}
    assert {"recording_rules.yml", "alert_rules.yml"} <= files, files
    assert rules and all(rule["health"] == "ok" for rule in rules), [
        (rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    # The traffic shows in Prometheus, and nothing fires for a healthy server.
    scored = _query(base, 'sum(grpc_server_handled_total{grpc_method="Score",grpc_code="OK"})')
    assert scored and float(scored[0]["value"][1]) >= 39
    firing = [rule["name"] for rule in rules
              if rule["type"] == "alerting" and rule["state"] == "firing"]
    assert not firing, firing
