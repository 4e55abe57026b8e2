"""The provisioned Grafana dashboard (monitoring/grafana/) is well formed and queries only metrics
that `effort serve` exports, each filtered by the dashboard's $job and $instance.

Grafana publishes no JSON schema of its dashboards to PyPI or npm (only TypeScript types), so
the model is checked here field by field; with promtool installed every query is parsed too.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring_names import (
    DASHBOARD,
    dashboard_exprs,
    dashboard_metric_names,
    load_dashboard,
    metric_names,
    panels,
    selectors,
    variable_query_exprs,
)

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "monitoring" / "grafana"
PROVIDER = GRAFANA / "provisioning" / "dashboards" / "effort.yaml"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"
COMPOSE = ROOT / "deploy" / "compose.yaml"
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

# README.md, Metrics: every metric family `effort serve` exports that a dashboard may chart.
HISTOGRAMS = {"grpc_server_handling_seconds", "effort_customer_effort_score", "effort_churn_risk",
              "effort_feature_age_seconds", "effort_ingestion_lag_seconds",
              "effort_feature_store_read_seconds", "effort_score_stage_seconds"}
COUNTERS_AND_GAUGES = {
    "grpc_server_started_total", "grpc_server_handled_total", "effort_tier_total",
    "effort_degraded_total", "effort_unknown_customer_total", "effort_model_info",
    "effort_model_created_timestamp_seconds", "effort_model_loaded_timestamp_seconds",
    "effort_model_reloads_total", "effort_model_reload_refusals_total", "effort_events_total",
    "effort_calls_in_flight", "effort_shed_total", "effort_feature_store_data_lost",
    "effort_feature_store_errors_total", "effort_feature_store_circuit_open",
    "effort_auth_failures_total", "effort_build_info", "effort_feature_drift_psi",
    "effort_score_drift_psi", "effort_drift_window_rows", "effort_guard_shed_total",
    "effort_guard_score_in_flight", "effort_guard_score_queued"}
EXPORTED = COUNTERS_AND_GAUGES | {f"{name}{suffix}" for name in HISTOGRAMS
                                 for suffix in ("_bucket", "_sum", "_count")}
# Charted through another metric: grpc_server_handled_total counts the same calls, with a code.
NOT_CHARTED = {"grpc_server_started_total"}
# Grafana unit ids (packages/grafana-data/src/valueFormats/categories.ts) the dashboard may use.
UNITS = {"none", "short", "percentunit", "percent", "s", "ms", "reqps", "cps", "ops", "bool",
         "dtdurations"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def _queries(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p.get("type") != "row"]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_dashboard_is_json_with_its_identity_and_variables(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "effort"
    assert dashboard["title"] == "Effort"
    assert dashboard["schemaVersion"] == 39
    assert "id" not in dashboard or dashboard["id"] is None, "an id ties the file to one Grafana"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        variable = variables[name]
        assert variable["type"] == "query" and variable["datasource"] == DATASOURCE_REF
        assert variable["includeAll"] and variable["multi"] and variable["allValue"] == ".*"
    queries = dict(variable_query_exprs(dashboard))
    assert metric_names(queries["job"]) == {"effort_build_info"}
    assert re.fullmatch(r'effort_build_info\{job=~"\$job"\}', queries["instance"].strip())
    assert "label_values(" in variables["instance"]["query"]
    assert variables["instance"]["query"].rstrip().endswith(", instance)")


def test_every_panel_has_a_datasource_queries_a_unit_and_a_place(
        dashboard: dict[str, Any]) -> None:
    charts = _queries(dashboard)
    assert len(charts) >= 25
    for panel in panels(dashboard):
        title = panel.get("title")
        assert isinstance(title, str) and title.strip(), panel
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), title
        assert grid["h"] > 0 and grid["w"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, title
        assert grid["x"] + grid["w"] <= 24, f"{title} is wider than the grid"
        if panel["type"] == "row":
            assert not panel.get("targets"), f"row {title} has queries"
            assert (grid["x"], grid["w"], grid["h"]) == (0, 24, 1), title
    for panel in charts:
        title = panel["title"]
        assert panel.get("datasource") == DATASOURCE_REF, title
        assert panel.get("description", "").strip(), f"{title} has no description"
        targets = panel.get("targets") or []
        assert targets, f"{title} has no query"
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"{title} has an empty query"
            assert target.get("datasource", DATASOURCE_REF) == DATASOURCE_REF, title
        ref_ids = [t.get("refId") for t in targets]
        assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), f"{title}: refIds {ref_ids}"
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in UNITS, f"{title}: unit {unit!r}"


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel.get("id") for panel in panels(dashboard)]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(set(ids)) == len(ids), [i for i in ids if ids.count(i) > 1]


def _overlaps(group: list[dict[str, Any]]) -> list[tuple[str, str]]:
    boxes = [(p["title"], p["gridPos"]) for p in group]
    return [(a, b) for n, (a, g) in enumerate(boxes) for b, h in boxes[n + 1:]
            if g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"]
            and g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]]


def test_no_two_panels_overlap(dashboard: dict[str, Any]) -> None:
    assert not _overlaps(dashboard["panels"])
    for row in dashboard["panels"]:  # a collapsed row keeps its panels inside it
        assert not _overlaps(row.get("panels", [])), row["title"]


def test_every_query_selects_by_job_and_instance(dashboard: dict[str, Any]) -> None:
    for where, expr in dashboard_exprs(dashboard):
        for name, matchers in selectors(expr):
            assert name, f"{where}: a selector with no metric name: {matchers}"
            assert 'job=~"$job"' in matchers and 'instance=~"$instance"' in matchers, (
                f"{where}: {name}{matchers} is not filtered by $job and $instance")


def test_every_metric_queried_is_one_effort_serve_exports() -> None:
    names = dashboard_metric_names()
    assert len(names) > 20, names
    unknown = sorted(names - EXPORTED)
    assert not unknown, f"the dashboard queries metrics that are not exported: {unknown}"


def test_every_exported_metric_is_charted() -> None:
    names = dashboard_metric_names()
    families = {name for name in COUNTERS_AND_GAUGES if name in names} | {
        name for name in HISTOGRAMS if any(n.startswith(f"{name}_") for n in names)}
    missing = sorted((COUNTERS_AND_GAUGES | HISTOGRAMS) - families - NOT_CHARTED)
    assert not missing, f"no panel charts {missing}"


@pytest.mark.parametrize(("expr", "expected"), [
    ('histogram_quantile(0.99, sum by (le, stage) (rate(a_bucket{job=~"$job"}[$__rate_interval])))',
     [("a_bucket", '{job=~"$job"}')]),
    ("sum(rate(c[5m])) / on (job) group_left (version) d", [("c", ""), ("d", "")]),
    ("x and on() y offset 5m unless z", [("x", ""), ("y", ""), ("z", "")]),
    ('count_values("le", e) > bool 0.5', [("e", "")]),
    ("sum without (instance) (f) * 1e3 + g @ start()", [("f", ""), ("g", "")]),
    ("time() - vector(0.15)", []),
    ('label_replace(h, "dst", "$1", "src", "(.*)")', [("h", "")]),
    ('sum(m{a="}", b=~"x|y"}) by (le)  # a comment: n', [("m", '{a="}", b=~"x|y"}')]),
    ('{__name__="o"}', [("", '{__name__="o"}')]),
])
def test_the_metric_name_extractor(expr: str, expected: list[tuple[str, str]]) -> None:
    assert selectors(expr) == expected


def _as_prometheus_would_run_it(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced by values Prometheus accepts."""
    for variable, value in (("$__rate_interval", "1m"), ("$__range", "1h"),
                            ("$__interval", "15s"), ("$job", ".*"), ("$instance", ".*")):
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    exprs = [*dashboard_exprs(dashboard), *variable_query_exprs(dashboard)]
    rules = [{"record": f"dashboard:query_{n}", "expr": _as_prometheus_would_run_it(expr)}
             for n, (_, expr) in enumerate(exprs)]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_provider_loads_the_dashboards_folder() -> None:
    provider = _yaml(PROVIDER)
    assert provider["apiVersion"] == 1
    [effort] = provider["providers"]
    assert effort["type"] == "file"
    assert effort["folder"] == "Effort"
    assert effort["options"]["path"] == "/var/lib/grafana/dashboards"
    assert DASHBOARD.parent == GRAFANA / "dashboards"


def test_prometheus_is_the_default_datasource_the_dashboard_names(
        dashboard: dict[str, Any]) -> None:
    config = _yaml(DATASOURCES)
    assert config["apiVersion"] == 1
    [prometheus] = config["datasources"]
    assert prometheus["name"] == "Prometheus"
    assert prometheus["uid"] == "prometheus"
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert variable["current"]["value"] == prometheus["uid"]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a compose service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume.get("target", "")
        else:
            source, target = [*str(volume).split(":"), "", ""][:2]
        mounts[target] = str((COMPOSE.parent / source).resolve()) if source else ""
    return mounts


@pytest.mark.skipif(not COMPOSE.exists(), reason="deploy/compose.yaml is not written yet")
def test_compose_mounts_the_provisioning_where_grafana_reads_it() -> None:
    services = _yaml(COMPOSE)["services"]
    grafana = [s for s in services.values() if "grafana" in str(s.get("image", ""))]
    assert len(grafana) == 1, list(services)
    mounts = _mounts(grafana[0])
    assert mounts.get("/etc/grafana/provisioning") == str(GRAFANA / "provisioning"), mounts
    assert mounts.get("/var/lib/grafana/dashboards") == str(GRAFANA / "dashboards"), mounts
