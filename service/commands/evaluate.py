"""`effort evaluate`: outcome labels joined to the prediction log, figures per model version."""

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from features.catalog import JOIN_KEY
from features.domain import DAY
from features.prediction_log_schema import CONTACT_ID, LOG_DATE
from service.commands.progress import ProgressBars
from service.settings import Settings
from training.dataset import read_labels
from training.live_evaluation import evaluate_live
from training.live_evaluation_report import write_live_report
from training.prediction_join import LABEL_TIME, join_labels, read_label_contacts
from training.prediction_log_reader import read_prediction_log

DEFAULT_OUT_ROOT = Path("var/evaluation")


def run(args: argparse.Namespace) -> None:
    """Reads, joins, evaluates, writes report.html and evaluation.json; prints a summary."""
    labels = _labels(args.labels, args.since, args.until)
    log_dir = args.log_dir or _configured_log_dir()
    max_age_seconds = args.max_age_hours * 3600.0
    # Labels early in the window may take a prediction logged up to max_age before it.
    first_day = (args.since - timedelta(days=int(-(-max_age_seconds // DAY)))
                 if args.since else None)
    bars = ProgressBars()
    try:
        log = read_prediction_log(log_dir, first_day, args.until, bars)
    finally:
        bars.close()
    joined = join_labels(labels, log, args.match_seconds, max_age_seconds)
    if args.since:  # the days read only for the join stay out of the answers' own figures
        log = log[log[LOG_DATE] >= args.since]
    evaluation = evaluate_live(joined, log)
    created = datetime.now(UTC)
    out = args.out or DEFAULT_OUT_ROOT / created.strftime("%Y%m%dT%H%M%SZ")
    context = {"labels": str(args.labels) if args.labels else None, "log_dir": str(log_dir),
               "created_at": created.isoformat(timespec="seconds"), "synthetic": args.synthetic,
               "match_tolerance_seconds": args.match_seconds, "max_age_seconds": max_age_seconds,
               "since": args.since.isoformat() if args.since else None,
               "until": args.until.isoformat() if args.until else None}
    html_path, json_path = write_live_report(out, evaluation, context)
    _summary(evaluation, args.synthetic)
    print(f"report: {html_path}\njson: {json_path}")


def _labels(path: Path | None, since: date | None, until: date | None) -> pd.DataFrame:
    """The labels in the window with their contact ids if the file has them; none without a
    file, when only the expected figures are wanted."""
    if path is None:
        return pd.DataFrame({JOIN_KEY: pd.Series(dtype="string"),
                             LABEL_TIME: pd.Series(dtype="datetime64[ns, UTC]"),
                             "ces": pd.Series(dtype="float64"), "churned": pd.Series(dtype="float64")})
    labels = read_labels(path)
    contacts = read_label_contacts(path)
    if contacts is not None:
        labels = labels.assign(**{CONTACT_ID: contacts.to_numpy()})
    return _in_window(labels, since, until)


def _configured_log_dir() -> Path:
    folder = Settings().prediction_log_dir
    if folder is None:
        raise ValueError("the prediction log is off (EFFORT_PREDICTION_LOG_DIR is empty): "
                         "name its folder with --log-dir")
    return folder


def _in_window(labels: pd.DataFrame, since: date | None, until: date | None) -> pd.DataFrame:
    """The labels whose label_time falls on a UTC day in [since, until]."""
    days = labels[LABEL_TIME].dt.tz_convert("UTC").dt.date
    keep = pd.Series(True, index=labels.index)
    if since:
        keep &= days >= since
    if until:
        keep &= days <= until
    if not keep.any():
        raise ValueError(f"no label has its label_time between {since or 'the start'} and "
                         f"{until or 'the end'}")
    return labels[keep]


def _cell(value: Any, pattern: str) -> str:
    return "n/a" if value is None or value != value else pattern.format(value)


def _summary(evaluation: dict[str, Any], synthetic: bool) -> None:
    counts = evaluation["counts"]
    tag = "SYNTHETIC data" if synthetic else "your data"
    if not counts["labels"]:
        print(f"no labels ({tag}): expected figures only; {counts['logged']:,} answers logged")
    else:
        print(f"{counts['labels']:,} labels ({tag}): {counts['joined']:,} joined "
              f"({counts['joined_by_contact'] + counts['joined_by_label_time']:,} at label_time, "
              f"{counts['joined_by_earlier']:,} to an earlier prediction, "
              f"{counts['joined_degraded']:,} degraded), {counts['unmatched']:,} unmatched; "
              f"{counts['logged']:,} answers logged")
    header = ("model version", "answers", "outcomes", "ROC-AUC", "expected", "rule",
              "senior share", "capture", "rule share", "rule capture", "ECE", "MAE CES", "Spearman")
    rows = [header]
    for v in evaluation["versions"]:
        churn, effort = v.get("churn", {}), v.get("effort", {})
        rule = churn.get("rule", {})
        rows.append((v["model_version"], f"{v['logged']['rows']:,}", f"{churn.get('rows', 0):,}",
                     _cell(churn.get("roc_auc"), "{:.3f}"),
                     _cell(v["expected"]["roc_auc"], "{:.3f}"),
                     _cell(rule.get("roc_auc"), "{:.3f}"),
                     _cell(v["senior_share"], "{:.1%}"),
                     _cell(churn.get("at_senior_share", {}).get("capture"), "{:.1%}"),
                     _cell(rule.get("share"), "{:.1%}"),
                     _cell(rule.get("capture"), "{:.1%}"),
                     _cell(churn.get("calibration_error"), "{:.3f}"),
                     _cell(effort.get("mae_ces"), "{:.2f}"),
                     _cell(effort.get("spearman"), "{:.3f}")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print("expected: the ROC-AUC the calibrated churn risks promise on all answers (CBPE); "
          "capture: the model's riskiest answers at the version's served senior share")
    for pair in evaluation.get("champion_challenger", []):
        expected = pair["expected"]
        realised = {side: pair[f"{side}_figures"]["churn"].get("roc_auc")
                    for side in ("champion", "challenger")}
        print(f"challenger {pair['challenger']} beside champion {pair['champion']} on the same "
              f"{pair['logged']:,} answers: same tier on {_cell(pair['tier_agreement'], '{:.1%}')}, "
              f"expected ROC-AUC {_cell(expected['challenger']['roc_auc'], '{:.3f}')} against "
              f"{_cell(expected['champion']['roc_auc'], '{:.3f}')}, realised on "
              f"{pair['joined']:,} outcomes {_cell(realised['challenger'], '{:.3f}')} against "
              f"{_cell(realised['champion'], '{:.3f}')}")
