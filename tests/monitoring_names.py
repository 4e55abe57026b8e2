"""The metric names that monitoring/ queries: the Grafana dashboard's and the Prometheus rules'.

Names are those of samples on a /metrics page: a histogram by its `_bucket`, `_sum` or `_count`
series, a counter with its `_total`, as the queries write them. A scrape test checks that each
one is exported; tests/unit/test_dashboard.py that each one is documented.

The extractor reads PromQL (with Grafana's `$variables`) well enough for that: strings, label
matchers, ranges, numbers and durations are skipped whole; an identifier followed by `(` is a
function; the label lists of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`
are skipped; what is left that is not a keyword is a metric name.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "effort.json"
RULES = ROOT / "monitoring" / "prometheus"

_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_TOKEN = re.compile(rf"""
    (?P<string>{_STRING})
  | (?P<selector>\{{(?:{_STRING}|[^}}"'`])*\}})
  | (?P<range>\[[^\]]*\])
  | (?P<variable>\$\{{[^}}]*\}}|\$\w+)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[a-zA-Z]*)
  | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<comment>\#[^\n]*)
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

# Followed by a parenthesised list of label names (group_left/right may stand alone).
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# May be followed by `by`/`without` rather than `(`.
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                 "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.+),\s*[a-zA-Z_]\w*\s*\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.DOTALL)


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, its `{...}` label matchers or "") of every series selector in a PromQL
    expression; a selector with no name before its braces comes back as ("", "{...}")."""
    tokens = [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(expr)
              if m.lastgroup not in ("space", "comment")]
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "selector":
            found.append(("", text))
        elif kind == "name":
            if text in _LABEL_LISTS and following[1] == "(":
                while i < len(tokens) and tokens[i][1] != ")":
                    i += 1
            elif (text in _KEYWORDS or text in _LABEL_LISTS or following[1] == "("
                  or (text in _AGGREGATIONS and following[1] in ("by", "without"))):
                pass  # a function, an aggregation, an operator or a literal
            elif following[0] == "selector":
                found.append((text, following[1]))
                i += 1
            else:
                found.append((text, ""))
        i += 1
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    return {name for name, _ in selectors(expr) if name}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title and refId, PromQL expression) of every panel query."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"{panel.get('title')!r} {target.get('refId')}", str(target.get("expr", ""))


def variable_query_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable name, PromQL it selects with) of the dashboard's query variables:
    label_values(selector, label) and query_result(expr)."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = str(query.get("query", "") if isinstance(query, dict) else query or "")
        match = _LABEL_VALUES.match(text)
        if match:
            yield variable["name"], match["selector"]
        elif (match := _QUERY_RESULT.match(text)):
            yield variable["name"], match["expr"]


def dashboard_metric_names(path: Path = DASHBOARD) -> set[str]:
    """The metric names the dashboard queries, in its panels and its variables."""
    dashboard = load_dashboard(path)
    names: set[str] = set()
    for _, expr in (*dashboard_exprs(dashboard), *variable_query_exprs(dashboard)):
        names |= metric_names(expr)
    return names


def rule_files(folder: Path = RULES) -> list[Path]:
    return sorted(folder.glob("*_rules.yml"))


def rule_metric_names(folder: Path = RULES) -> set[str]:
    """The metric names the Prometheus rules read, less the series the rules themselves record
    and Prometheus's own ALERTS series."""
    names: set[str] = set()
    recorded = {"ALERTS", "ALERTS_FOR_STATE"}
    for path in rule_files(folder):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                if "record" in rule:
                    recorded.add(rule["record"])
                names |= metric_names(str(rule.get("expr", "")))
    return names - recorded
