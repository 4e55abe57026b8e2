"""The Prometheus rules of monitoring/prometheus/: valid, unit-tested with promtool, and every alert
labelled, annotated, documented in docs/runbook.md and tested where it fires and where it does not.

promtool comes with Debian's prometheus package; `make test` installs it (`make promtool`). Without
it the promtool tests are skipped and the checks of the files themselves still run.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus"
RULE_FILES = sorted(RULES.glob("*_rules.yml"))
TEST_FILES = sorted((RULES / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
SEVERITIES = {"page", "ticket"}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's prometheus package; "
    "`make promtool` installs it, and `make test` does so first)")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(RULES / "alert_rules.yml")["groups"]
            for rule in group["rules"] if "alert" in rule]


def _alert_names() -> list[str]:
    return sorted({rule["alert"] for rule in _alert_rules()})


def _alert_cases() -> list[tuple[str, str, dict[str, Any]]]:
    """(test file, test name, alert_rule_test case) of every test file."""
    return [(path.name, test.get("name", ""), case) for path in TEST_FILES
            for test in _yaml(path)["tests"] for case in test.get("alert_rule_test") or []]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_files_are_there() -> None:
    assert [p.name for p in RULE_FILES] == ["alert_rules.yml", "recording_rules.yml"]
    assert TEST_FILES, "no promtool unit tests in monitoring/prometheus/tests/"
    assert _alert_names()


@needs_promtool
def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", *(str(p.relative_to(ROOT)) for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", *(str(p.relative_to(ROOT)) for p in TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def _loaded(path: Path) -> list[Path]:
    return [(path.parent / name).resolve() for name in _yaml(path)["rule_files"]]


def test_every_test_file_loads_the_rules_in_order() -> None:
    """Both rule files, recording rules first; model_age.yml needs the alert rules alone."""
    both = [RULES.resolve() / "recording_rules.yml", RULES.resolve() / "alert_rules.yml"]
    for path in TEST_FILES:
        assert _loaded(path) in (both, both[1:]), path.name


def test_every_test_file_evaluates_every_group_in_order() -> None:
    """Recording groups first, so that an alert never reads a ratio one step old in a test."""
    for path in TEST_FILES:
        groups = [group["name"] for rules in _loaded(path) for group in _yaml(rules)["groups"]]
        assert _yaml(path).get("group_eval_order") == groups, path.name


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_has_a_severity_and_its_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook_url"] == f"docs/runbook.md#{rule['alert'].lower()}"


def test_every_alert_has_a_runbook_section() -> None:
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE)
    missing = [name for name in _alert_names() if name not in headings]
    assert not missing, f"docs/runbook.md lacks a section (## NAME) for {missing}"
    unknown = [h for h in headings if h.startswith("Effort") and h not in _alert_names()]
    assert not unknown, f"docs/runbook.md has sections for alerts that do not exist: {unknown}"


def test_runbook_links_point_at_sections() -> None:
    text = RUNBOOK.read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\S+)\s*$", text, flags=re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links <= anchors, f"links to missing sections: {sorted(links - anchors)}"


@pytest.mark.parametrize("name", _alert_names())
def test_every_alert_is_tested_firing_and_silent(name: str) -> None:
    cases = [case for _, _, case in _alert_cases() if case["alertname"] == name]
    firing = [case for case in cases if case.get("exp_alerts")]
    silent = [case for case in cases if not case.get("exp_alerts")]
    assert firing, f"no test case in monitoring/prometheus/tests/ where {name} fires"
    assert silent, f"no test case in monitoring/prometheus/tests/ where {name} does not fire"
    for case in firing:
        for alert in case["exp_alerts"]:
            assert alert.get("exp_labels", {}).get("severity") in SEVERITIES, case
            assert set(alert.get("exp_annotations", {})) == {"summary", "description",
                                                             "runbook_url"}, case


def test_alert_tests_name_existing_alerts() -> None:
    unknown = {case["alertname"] for _, _, case in _alert_cases()} - set(_alert_names())
    assert not unknown, f"tests of alerts that do not exist: {sorted(unknown)}"


def test_every_severity_of_an_alert_is_tested_firing() -> None:
    """The page and the ticket of a burn-rate alert are two rules: each is seen firing."""
    fired = {(case["alertname"], alert["exp_labels"]["severity"]) for _, _, case in _alert_cases()
             for alert in case.get("exp_alerts") or []}
    rules = {(rule["alert"], rule["labels"]["severity"]) for rule in _alert_rules()}
    assert rules <= fired, f"never seen firing: {sorted(rules - fired)}"
