"""`effort evaluate` on small hand-made prediction logs: the join, the figures, CBPE, the command."""

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from features.catalog import MODEL_FEATURES
from features.domain import COMPLAINT_UNACKNOWLEDGED, effort_score_to_ces
from features.prediction_log_schema import (
    BATCH_INDEX,
    CHALLENGER_CHURN_RISK,
    CHALLENGER_EFFORT_SCORE,
    CHALLENGER_MODEL_VERSION,
    CHALLENGER_SENIOR,
    CHURN_RISK,
    CONTACT_ID,
    CUSTOMER_ID,
    CUSTOMER_KNOWN,
    DEGRADED_REASON,
    EFFORT_SCORE,
    FEATURE_COLUMNS,
    LOG_DATE,
    LOG_TIMESTAMP,
    MODEL_VERSION,
    REASON_CODES,
    REQUEST_ID,
    SENIOR,
    logged_feature_name,
)
from service.cli import main
from training.dataset import read_labels
from training.expected_performance import expected_at_share, expected_roc_auc
from training.live_evaluation import evaluate_live
from training.live_evaluation_report import write_live_report
from training.prediction_join import (
    AT_LABEL_TIME,
    BY_CONTACT,
    EARLIER,
    JOIN_KIND,
    join_labels,
    read_label_contacts,
)
from training.prediction_log_reader import PredictionLogError, read_prediction_log

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONTACTS_7D = logged_feature_name("contacts_7d")
COMPLAINT_STATE = logged_feature_name("complaint_state")

# The logged columns and types (features/prediction_log_schema.py), written here by hand.
LOG_SCHEMA = pa.schema([
    (CUSTOMER_ID, pa.string()), (CONTACT_ID, pa.string()), (BATCH_INDEX, pa.int32()),
    (MODEL_VERSION, pa.string()), (EFFORT_SCORE, pa.float64()), (CHURN_RISK, pa.float64()),
    (SENIOR, pa.bool_()), (REASON_CODES, pa.list_(pa.string())), (DEGRADED_REASON, pa.string()),
    (CUSTOMER_KNOWN, pa.bool_()), (CHALLENGER_MODEL_VERSION, pa.string()),
    (CHALLENGER_EFFORT_SCORE, pa.float64()), (CHALLENGER_CHURN_RISK, pa.float64()),
    (CHALLENGER_SENIOR, pa.bool_()), *((name, pa.float64()) for name in FEATURE_COLUMNS),
    (LOG_TIMESTAMP, pa.timestamp("us", tz="UTC")), (LOG_DATE, pa.date32()), (REQUEST_ID, pa.string()),
])


def logged(customer: str, at: datetime, risk: float = 0.2, version: str = "v1",
           **columns: Any) -> dict[str, Any]:
    """One logged answer with every column; keyword arguments override."""
    row: dict[str, Any] = {
        CUSTOMER_ID: customer, CONTACT_ID: "", BATCH_INDEX: 0, MODEL_VERSION: version,
        EFFORT_SCORE: 50.0, CHURN_RISK: risk, SENIOR: False, REASON_CODES: [],
        DEGRADED_REASON: "", CUSTOMER_KNOWN: True, CHALLENGER_MODEL_VERSION: None,
        CHALLENGER_EFFORT_SCORE: None, CHALLENGER_CHURN_RISK: None, CHALLENGER_SENIOR: None,
        **dict.fromkeys(FEATURE_COLUMNS, 0.0),
        LOG_TIMESTAMP: at, LOG_DATE: at.date(), REQUEST_ID: f"r-{customer}-{at.timestamp()}",
    }
    row.update(columns)
    return row


def write_log(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """The rows as Parquet parts under <folder>/__log_date=YYYY-MM-DD/, one part per day."""
    for day in sorted({row[LOG_DATE] for row in rows}):
        part = folder / f"{LOG_DATE}={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        day_rows = [row for row in rows if row[LOG_DATE] == day]
        table = pa.Table.from_pylist(day_rows, schema=LOG_SCHEMA)
        pq.write_table(table, part / f"part-0-{len(list(part.iterdir()))}.parquet")
    return folder


def write_labels(path: Path, rows: list[tuple[str, datetime, Any, Any]],
                 contacts: list[str] | None = None) -> Path:
    """A labels CSV in training's schema (customer_id, label_time, ces, churned)."""
    frame = pd.DataFrame({"customer_id": [r[0] for r in rows],
                          "label_time": [r[1].isoformat() for r in rows],
                          "ces": ["" if r[2] is None else str(r[2]) for r in rows],
                          "churned": ["" if r[3] is None else str(r[3]).lower() for r in rows]})
    if contacts is not None:
        frame[CONTACT_ID] = contacts
    frame.to_csv(path, index=False)
    return path


def joined_for(tmp_path: Path, log_rows: list[dict[str, Any]],
               labels: list[tuple[str, datetime, Any, Any]], contacts: list[str] | None = None,
               **options: float) -> Any:
    log = read_prediction_log(write_log(tmp_path / "log", log_rows))
    path = write_labels(tmp_path / "labels.csv", labels, contacts)
    frame = read_labels(path)
    named = read_label_contacts(path)
    if named is not None:
        frame = frame.assign(**{CONTACT_ID: named.to_numpy()})
    return join_labels(frame, log, **options), log


# The join


def test_a_label_takes_the_prediction_logged_at_its_time(tmp_path: Path) -> None:
    rows = [logged("C1", T0 - timedelta(hours=1), risk=0.1),
            logged("C1", T0 + timedelta(milliseconds=400), risk=0.7),
            logged("C2", T0, risk=0.3)]
    joined, _ = joined_for(tmp_path, rows, [("C1", T0, 3, True)])
    assert joined.rows[CHURN_RISK].tolist() == [0.7]
    assert joined.rows[JOIN_KIND].tolist() == [AT_LABEL_TIME]
    assert joined.counts["joined_by_label_time"] == 1 and joined.counts["unmatched"] == 0


def test_else_the_latest_prediction_before_label_time(tmp_path: Path) -> None:
    rows = [logged("C1", T0 - timedelta(hours=5), risk=0.1),
            logged("C1", T0 - timedelta(hours=2), risk=0.4),
            logged("C1", T0 + timedelta(hours=1), risk=0.9)]
    joined, _ = joined_for(tmp_path, rows, [("C1", T0, None, False)])
    assert joined.rows[CHURN_RISK].tolist() == [0.4]
    assert joined.rows[JOIN_KIND].tolist() == [EARLIER]


def test_unmatched_labels_are_counted_by_why(tmp_path: Path) -> None:
    rows = [logged("C1", T0 - timedelta(days=2)),  # older than the 24-hour default
            logged("C2", T0 + timedelta(seconds=5)),  # after label_time, beyond the tolerance
            logged("C3", T0)]
    labels = [("C1", T0, None, True), ("C2", T0, None, True), ("C3", T0, None, False),
              ("C9", T0, None, True)]
    joined, _ = joined_for(tmp_path, rows, labels)
    assert joined.counts == {"labels": 4, "joined": 1, "joined_by_contact": 0,
                             "joined_by_label_time": 1, "joined_by_earlier": 0, "unmatched": 3,
                             "unmatched_customer_never_logged": 1,
                             "unmatched_no_prediction_in_window": 2}
    wider, _ = joined_for(tmp_path / "wider", rows, labels, max_age_seconds=3 * 86400.0,
                          match_tolerance_seconds=10.0)
    assert wider.counts["joined"] == 3 and wider.counts["joined_by_earlier"] == 1


def test_a_label_naming_its_contact_prefers_that_contacts_prediction(tmp_path: Path) -> None:
    rows = [logged("C1", T0, risk=0.2, **{CONTACT_ID: "K-other"}),
            logged("C1", T0 + timedelta(milliseconds=800), risk=0.6, **{CONTACT_ID: "K-1"})]
    joined, _ = joined_for(tmp_path, rows, [("C1", T0, None, True)], contacts=["K-1"])
    assert joined.rows[CHURN_RISK].tolist() == [0.6]
    assert joined.rows[JOIN_KIND].tolist() == [BY_CONTACT]


# The figures


def period(seed: int = 3, customers: int = 600) -> tuple[list[dict[str, Any]], list[tuple]]:
    """A simulated period over 3 days and two model versions, each customer scored once and
    labelled at that moment with an outcome drawn from its risk."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(customers):
        at = T0 + timedelta(days=int(i % 3), seconds=int(rng.integers(0, 40_000)))
        risk = float(rng.beta(2, 6))
        version = "v1" if i % 2 else "v2"
        churned = bool(rng.random() < risk)
        effort = float(rng.uniform(0, 100))
        ces = int(np.clip(round(effort_score_to_ces(np.array([effort]))[0] + rng.normal(0, 1)), 1, 7))
        features = {CONTACTS_7D: float(rng.integers(0, 5)),
                    COMPLAINT_STATE: float(COMPLAINT_UNACKNOWLEDGED if rng.random() < 0.1 else 0)}
        rows.append(logged(f"C{i:04d}", at, risk, version, **{EFFORT_SCORE: effort,
                                                            SENIOR: risk > 0.4, **features}))
        labels.append((f"C{i:04d}", at, ces if i % 4 else None, churned))
    return rows, labels


def test_roc_auc_per_version_equals_sklearn_on_the_joined_rows(tmp_path: Path) -> None:
    rows, labels = period()
    joined, log = joined_for(tmp_path, rows, labels)
    assert joined.counts["joined"] == len(labels)
    evaluation = evaluate_live(joined, log)
    frame = pd.DataFrame(rows)
    truth = pd.DataFrame(labels, columns=["customer", "at", "ces", "churned"])
    assert [v["model_version"] for v in evaluation["versions"]] == ["v1", "v2"]
    for version in evaluation["versions"]:
        mine = (frame[MODEL_VERSION] == version["model_version"]).to_numpy()
        outcome = truth["churned"].to_numpy()[mine].astype(float)
        risk = frame[CHURN_RISK].to_numpy()[mine]
        assert version["churn"]["rows"] == mine.sum()
        assert version["churn"]["roc_auc"] == pytest.approx(roc_auc_score(outcome, risk), abs=1e-12)
        rule = ((frame[CONTACTS_7D] >= 3) | (frame[COMPLAINT_STATE] == COMPLAINT_UNACKNOWLEDGED)
                ).to_numpy()[mine]
        assert version["churn"]["rule"]["roc_auc"] == pytest.approx(
            roc_auc_score(outcome, rule.astype(float)))
        assert version["churn"]["rule"]["capture"] == pytest.approx(
            outcome[rule].sum() / outcome.sum())
        assert version["senior_share"] == pytest.approx((risk > 0.4).mean())
        has_ces = truth["ces"].notna().to_numpy()[mine]
        predicted = 7 - frame[EFFORT_SCORE].to_numpy()[mine][has_ces] * 6 / 100
        answers = truth["ces"].to_numpy()[mine][has_ces].astype(float)
        assert version["effort"]["mae_ces"] == pytest.approx(np.abs(predicted - answers).mean())
        assert len(version["days"]) == 3
        assert sum(d["labelled"] for d in version["days"]) == mine.sum()


def test_degraded_answers_are_counted_and_left_out(tmp_path: Path) -> None:
    rows = [logged("C1", T0, risk=0.9), logged("C2", T0, risk=0.1),
            logged("C3", T0, risk=0.95, **{DEGRADED_REASON: "feature store unavailable: timeout"})]
    labels = [("C1", T0, None, True), ("C2", T0, None, False), ("C3", T0, None, False)]
    joined, log = joined_for(tmp_path, rows, labels)
    evaluation = evaluate_live(joined, log)
    assert evaluation["counts"]["joined_degraded"] == 1
    assert evaluation["counts"]["logged_degraded"] == 1
    (version,) = evaluation["versions"]
    assert version["churn"]["rows"] == 2 and version["churn"]["roc_auc"] == 1.0
    assert (version["logged"]["rows"], version["logged"]["degraded"]) == (2, 1)
    assert version["expected"]["rows"] == 2


def test_champion_and_challenger_on_the_same_answers(tmp_path: Path) -> None:
    def shadowed(challenger_risk: float, senior: bool) -> dict[str, Any]:
        return {CHALLENGER_MODEL_VERSION: "v9", CHALLENGER_CHURN_RISK: challenger_risk,
                SENIOR: senior, CHALLENGER_SENIOR: False, CHALLENGER_EFFORT_SCORE: 40.0}

    rows = [logged("C1", T0, 0.8, **shadowed(0.3, True)),
            logged("C2", T0, 0.2, **shadowed(0.6, False)),
            logged("C3", T0, 0.5, **shadowed(0.4, False)),
            logged("C4", T0, 0.5)]  # not shadowed
    labels = [("C1", T0, None, True), ("C2", T0, None, False), ("C3", T0, None, False),
              ("C4", T0, None, True)]
    joined, log = joined_for(tmp_path, rows, labels)
    (pair,) = evaluate_live(joined, log)["champion_challenger"]
    assert (pair["champion"], pair["challenger"], pair["logged"], pair["joined"]) == ("v1", "v9", 3, 3)
    assert pair["tier_agreement"] == pytest.approx(2 / 3)
    assert pair["champion_figures"]["churn"]["roc_auc"] == 1.0
    assert pair["challenger_figures"]["churn"]["roc_auc"] == 0.0
    assert pair["expected"]["challenger"]["churn_rate"] == pytest.approx(1.3 / 3)


# The expected (CBPE) figures


def test_expected_roc_auc_matches_monte_carlo() -> None:
    rng = np.random.default_rng(11)
    risk = np.round(rng.beta(1.5, 4, size=400), 2)  # rounded: ties too
    outcomes = (rng.random((20_000, len(risk))) < risk).astype(float)
    # Mann-Whitney with mid-ranks: sklearn's ROC-AUC, for every draw at once.
    ranks = rankdata(risk)
    churners = outcomes.sum(axis=1)
    aucs = (outcomes @ ranks - churners * (churners + 1) / 2) / (churners * (len(risk) - churners))
    assert aucs[0] == pytest.approx(roc_auc_score(outcomes[0], risk))
    assert expected_roc_auc(risk) == pytest.approx(aucs.mean(), abs=0.002)


def test_expected_roc_auc_in_the_obvious_limits() -> None:
    assert expected_roc_auc(np.array([0.0, 0.0, 1.0, 1.0, 0.0])) == 1.0
    assert expected_roc_auc(np.full(50, 0.3)) == pytest.approx(0.5)
    assert np.isnan(expected_roc_auc(np.zeros(10)))
    assert np.isnan(expected_roc_auc(np.array([0.4])))


def test_expected_capture_at_a_share() -> None:
    figures = expected_at_share(np.array([0.9, 0.1, 0.5, 0.5]), 0.25)
    assert figures["capture"] == pytest.approx(0.9 / 2.0)
    assert figures["precision"] == pytest.approx(0.9)


# The reader


def test_reader_errors_are_one_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(PredictionLogError, match="does not exist"):
        read_prediction_log(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictionLogError, match="holds no predictions"):
        read_prediction_log(tmp_path / "empty")


def test_reader_filters_days_and_skips_files_being_written(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", [logged("C1", T0), logged("C2", T0 + timedelta(days=1)),
                                         logged("C3", T0 + timedelta(days=2))])
    (folder / f"{LOG_DATE}={T0.date()}" / ".part-9.parquet").write_bytes(b"half written")
    assert read_prediction_log(folder)[CUSTOMER_ID].tolist() == ["C1", "C2", "C3"]
    day2 = T0.date() + timedelta(days=1)
    frame = read_prediction_log(folder, since=day2)
    assert frame[CUSTOMER_ID].tolist() == ["C2", "C3"]
    assert frame[LOG_DATE].tolist() == [day2, day2 + timedelta(days=1)]
    assert read_prediction_log(folder, until=T0.date())[CUSTOMER_ID].tolist() == ["C1"]
    with pytest.raises(PredictionLogError, match="between 2027-01-01 and the end"):
        read_prediction_log(folder, since=date(2027, 1, 1))


def test_model_features_follow_the_logged_columns() -> None:
    assert [logged_feature_name(name) for name in MODEL_FEATURES] == list(FEATURE_COLUMNS)


# The report and the command


def test_report_is_self_contained_with_a_banner_and_strict_json(tmp_path: Path) -> None:
    rows, labels = period(customers=120)
    joined, log = joined_for(tmp_path, rows, labels)
    html_path, json_path = write_live_report(
        tmp_path / "out", evaluate_live(joined, log),
        {"labels": "labels.csv", "log_dir": "log", "created_at": "now", "synthetic": True,
         "match_tolerance_seconds": 1.0, "max_age_seconds": 86400.0})
    page = html_path.read_text()
    assert "SYNTHETIC DATA" in page and page.count("data:image/png;base64,") == 2
    assert "http" not in page.replace("http-equiv", "")
    json.loads(json_path.read_text(), parse_constant=lambda name: pytest.fail(name))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", "evaluate", *args],
                          capture_output=True, text=True, timeout=180)


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    missing = run("--labels", str(tmp_path / "nope.csv"), "--log-dir", str(tmp_path))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"effort evaluate: labels file {tmp_path / 'nope.csv'} does not exist"]
    labels = write_labels(tmp_path / "labels.csv", [("C1", T0, None, True)])
    empty = run("--labels", str(labels), "--log-dir", str(tmp_path / "log"))
    assert empty.returncode == 1 and len(empty.stderr.strip().splitlines()) == 1
    assert empty.stderr.startswith("effort evaluate: prediction log folder ")
    assert "does not exist" in empty.stderr and "Traceback" not in empty.stderr


def test_command_writes_the_report_and_the_json(tmp_path: Path) -> None:
    rows, labels = period(customers=200)
    folder = write_log(tmp_path / "log", rows)
    labels_path = write_labels(tmp_path / "labels.csv", labels)
    result = run("--labels", str(labels_path), "--log-dir", str(folder), "--out",
                 str(tmp_path / "out"), "--synthetic")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report.html").is_file()
    evaluation = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert evaluation["counts"]["joined"] == 200 and evaluation["context"]["synthetic"] is True
    assert f"report: {tmp_path / 'out' / 'report.html'}" in result.stdout
    assert "v1" in result.stdout and "v2" in result.stdout


def test_without_labels_the_command_reports_the_expected_figures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, _ = period(customers=90)
    folder = write_log(tmp_path / "log", rows)
    assert main(["evaluate", "--log-dir", str(folder), "--out", str(tmp_path / "out")]) == 0
    evaluation = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert evaluation["counts"]["labels"] == 0 and evaluation["counts"]["logged"] == 90
    assert all(v["expected"]["rows"] == 45 and v["churn"] == {"rows": 0}
               for v in evaluation["versions"])
    assert "expected figures only" in capsys.readouterr().out
