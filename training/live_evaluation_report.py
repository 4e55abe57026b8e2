"""The live evaluation report: one self-contained HTML page with plots, and evaluation.json."""

import base64
import html
import io
import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen: render to PNG
import matplotlib.pyplot as plt
from matplotlib import dates

HTML_NAME, JSON_NAME = "report.html", "evaluation.json"


def json_ready(value: Any) -> Any:
    """The value with NaN and infinities as null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_live_report(folder: Path, evaluation: dict[str, Any],
                      context: dict[str, Any]) -> tuple[Path, Path]:
    """Writes report.html and evaluation.json into `folder` (created); returns their paths.

    `context` says what was evaluated: labels, log_dir, created_at, synthetic, match_tolerance_seconds,
    max_age_seconds, since, until."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / JSON_NAME, folder / HTML_NAME
    json_path.write_text(json.dumps(json_ready({"context": context, **evaluation}), indent=2,
                                    allow_nan=False) + "\n")
    html_path.write_text(_page(evaluation, context))
    return html_path, json_path


def _f(value: Any, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None or value != value else pattern.format(value)


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _get(figures: dict[str, Any], *path: str) -> Any:
    """figures[path[0]][path[1]]..., None where a step is missing."""
    value: Any = figures
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _counts(counts: dict[str, int]) -> str:
    labels = counts["labels"]

    def row(name: str, key: str) -> list[str]:
        share = counts[key] / labels if labels else float("nan")
        return [name, f"{counts[key]:,}", _f(share, "{:.1%}")]

    return _table([
        row("labels", "labels"),
        row("joined: prediction logged for the label's contact", "joined_by_contact"),
        row("joined: prediction logged at label_time", "joined_by_label_time"),
        row("joined: customer's latest prediction before label_time", "joined_by_earlier"),
        row("joined, but the answer was degraded (left out of the figures)", "joined_degraded"),
        row("unmatched: customer never in the log", "unmatched_customer_never_logged"),
        row("unmatched: no prediction in the join window", "unmatched_no_prediction_in_window"),
    ], ["labels", "rows", "share of labels"]) + (
        f"<p>The log holds {counts['logged']:,} answers, {counts['logged_degraded']:,} of them "
        "degraded.</p>")


def _versions(versions: list[dict[str, Any]]) -> str:
    def line(name: str, path: tuple[str, ...], pattern: str = "{:.3f}") -> list[str]:
        return [name, *(_f(_get(v, *path), pattern) for v in versions)]

    return _table([
        line("answers logged (not degraded)", ("logged", "rows"), "{:,}"),
        line("answers logged degraded", ("logged", "degraded"), "{:,}"),
        line("senior share served", ("senior_share",), "{:.1%}"),
        line("labels joined", ("joined", "rows"), "{:,}"),
        line("churn outcomes (joined, not degraded)", ("churn", "rows"), "{:,}"),
        line("churn rate observed", ("churn", "churn_rate"), "{:.1%}"),
        line("churn rate expected from the scores", ("churn", "expected_churn_rate"), "{:.1%}"),
        line("churn ROC-AUC", ("churn", "roc_auc")),
        line("churn ROC-AUC expected (CBPE, same rows)", ("churn", "expected_roc_auc")),
        line("churn ROC-AUC expected (CBPE, all answers)", ("expected", "roc_auc")),
        line("churn ROC-AUC of today's rule", ("churn", "rule", "roc_auc")),
        line("churn ROC-AUC of the simulator's truth", ("churn", "truth_roc_auc")),
        line("capture at the senior share, model", ("churn", "at_senior_share", "capture"), "{:.1%}"),
        line("precision at the senior share, model", ("churn", "at_senior_share", "precision"),
             "{:.1%}"),
        line("capture expected at the senior share (CBPE, all answers)",
             ("expected", "at_senior_share", "capture"), "{:.1%}"),
        line("capture of the served tier (senior answers)", ("churn", "served_tier", "capture"),
             "{:.1%}"),
        line("share flagged by today's rule", ("churn", "rule", "share"), "{:.1%}"),
        line("capture of today's rule", ("churn", "rule", "capture"), "{:.1%}"),
        line("capture of the model at the rule's share", ("churn", "at_rule_share", "capture"),
             "{:.1%}"),
        line("expected calibration error", ("churn", "calibration_error")),
        line("Brier score", ("churn", "brier")),
        line("CES answers (joined, not degraded)", ("effort", "rows"), "{:,}"),
        line("effort MAE, CES points", ("effort", "mae_ces")),
        line("effort MAE of the mean answer, CES points", ("effort", "mae_ces_mean_baseline")),
        line("effort Spearman with CES", ("effort", "spearman")),
    ], ["metric", *(v["model_version"] for v in versions)])


def _reliability(versions: list[dict[str, Any]]) -> str:
    figure, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    for v in versions:
        points = _get(v, "churn", "reliability") or []
        if points:
            line = ax.plot([p["predicted"] for p in points], [p["observed"] for p in points], "-",
                           linewidth=1, label=f"{v['model_version']} (ECE "
                           f"{_f(v['churn']['calibration_error'])})")[0]
            # Dot area by the bin's rows: a sparse bin's observed rate is mostly noise.
            rows = max(p["rows"] for p in points)
            ax.scatter([p["predicted"] for p in points], [p["observed"] for p in points],
                       s=[10 + 190 * p["rows"] / rows for p in points], color=line.get_color(),
                       alpha=0.7)
    ax.set(xlabel="served churn risk (bin mean)", ylabel="observed churn rate",
           title="Reliability: 10 equal-width risk bins (dot area: rows)", xlim=(-0.02, 1.02),
           ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    return _png(figure)


def _over_time(versions: list[dict[str, Any]]) -> str:
    figure, (auc, rate) = plt.subplots(1, 2, figsize=(11, 4))
    for v in versions:
        days = v["days"]
        if not days:
            continue
        x = [date.fromisoformat(d["day"]) for d in days]
        line = auc.plot(x, [d["expected_roc_auc"] for d in days], "-",
                        label=f"{v['model_version']} expected (CBPE)")[0]
        auc.plot(x, [d["roc_auc"] for d in days], "o", color=line.get_color(),
                 label=f"{v['model_version']} realised")
        rate.plot(x, [d["expected_churn_rate"] for d in days], "-", color=line.get_color(),
                  label=f"{v['model_version']} expected")
        rate.plot(x, [d["churn_rate"] for d in days], "o", color=line.get_color(),
                  label=f"{v['model_version']} observed")
    auc.set(title="Churn ROC-AUC per day of prediction", ylabel="ROC-AUC")
    rate.set(title="Churn rate per day of prediction", ylabel="churn rate")
    spread = len({d["day"] for v in versions for d in v["days"]})
    for ax in (auc, rate):
        ax.legend(fontsize=7)
        ax.xaxis.set_major_locator(dates.DayLocator(interval=max(1, spread // 8)))
        ax.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    figure.autofmt_xdate()
    return _png(figure)


def _days(versions: list[dict[str, Any]]) -> str:
    rows = [[v["model_version"], d["day"], f"{d['logged']:,}", _f(d["senior_share"], "{:.1%}"),
             _f(d["expected_churn_rate"], "{:.1%}"), _f(d["expected_roc_auc"]),
             _f(d["expected_capture_at_senior_share"], "{:.1%}"), f"{d['labelled']:,}",
             _f(d["churn_rate"], "{:.1%}"), _f(d["roc_auc"])]
            for v in versions for d in v["days"]]
    return _table(rows, ["model version", "day", "answers", "senior share",
                         "expected churn rate", "expected ROC-AUC", "expected capture",
                         "churn outcomes", "churn rate", "ROC-AUC"])


def _challengers(pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return "<p>No answer was shadowed by a challenger.</p>"
    parts = []
    for pair in pairs:
        champion, challenger = pair["champion_figures"], pair["challenger_figures"]

        def line(name: str, path: tuple[str, ...], pattern: str = "{:.3f}",
                 a: dict[str, Any] = champion, b: dict[str, Any] = challenger) -> list[str]:
            return [name, _f(_get(a, *path), pattern), _f(_get(b, *path), pattern)]

        expected = pair["expected"]
        parts.append(_table([
            ["answers shadowed", f"{pair['logged']:,}", f"{pair['logged']:,}"],
            ["senior share", _f(pair["senior_share"], "{:.1%}"),
             _f(pair["challenger_senior_share"], "{:.1%}")],
            ["same tier", _f(pair["tier_agreement"], "{:.1%}"), ""],
            line("churn ROC-AUC expected (CBPE)", ("roc_auc",), a=expected["champion"],
                 b=expected["challenger"]),
            line("churn rate expected", ("churn_rate",), "{:.1%}", a=expected["champion"],
                 b=expected["challenger"]),
            ["labels joined", f"{pair['joined']:,}", f"{pair['joined']:,}"],
            line("churn ROC-AUC", ("churn", "roc_auc")),
            line("capture at the senior share", ("churn", "at_senior_share", "capture"), "{:.1%}"),
            line("capture of its tier", ("churn", "served_tier", "capture"), "{:.1%}"),
            line("expected calibration error", ("churn", "calibration_error")),
            line("effort MAE, CES points", ("effort", "mae_ces")),
            line("effort Spearman with CES", ("effort", "spearman")),
        ], ["same answers", f"champion {pair['champion']}", f"challenger {pair['challenger']}"]))
    return "".join(parts)


def _page(evaluation: dict[str, Any], context: dict[str, Any]) -> str:
    versions = evaluation["versions"]
    banner = ("<p class='synthetic'>SYNTHETIC DATA: these figures describe Effort's journey "
              "simulator, not a real contact center.</p>" if context.get("synthetic") else "")
    labels = (f"the labels <code>{html.escape(str(context['labels']))}</code>"
              if context.get("labels") else "no labels (the expected figures only)")
    days = evaluation["log_days"]
    window = "".join(f", {name} {html.escape(str(context[name]))}"
                     for name in ("since", "until") if context.get(name))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Effort live evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:left}}.synthetic{{background:#fff3cd;border:1px solid #e0b000;padding:8px;
font-weight:bold}}img{{max-width:100%}}</style></head><body>
<h1>Effort live evaluation</h1>{banner}
<p>Made {html.escape(str(context['created_at']))} from {labels} and the prediction log
<code>{html.escape(str(context['log_dir']))}</code> (days {html.escape(str(days['first']))} to
{html.escape(str(days['last']))}{window}). Each label takes its customer's prediction logged
within {context['match_tolerance_seconds']:g} s of label_time (the one for the label's contact
when the labels name contacts), else the latest one logged at most
{context['max_age_seconds'] / 3600:g} h before label_time.</p>
<h2>Labels joined</h2>{_counts(evaluation['counts'])}
<h2>Per model version, beside today's rule</h2>{_versions(versions)}
<p>Capture: the share of all churners that are among the contacts flagged. The model's figures take its
riskiest answers, as many as the version sent senior (the served senior share); the served tier
counts the answers it actually sent senior (the churn threshold, the effort threshold and the
routing rules together); today's rule flags 3 or more contacts in 7 days or an open complaint,
on the logged model inputs. Degraded answers (scored from priors) are left out of every figure
here but the counts.</p>
<h2>Calibration</h2>{_reliability(versions)}
<h2>Over time: expected and realised</h2>{_over_time(versions)}
<p>Lines: what the served churn risks promise on all that day's answers, labels or not (CBPE).
Dots: what the labels joined so far show for the same day's answers. A fall of the line is a drop
the labels will confirm later; a gap between dots and line is miscalibration.</p>
{_days(versions)}
<h2>Champion and challenger</h2>{_challengers(evaluation['champion_challenger'])}
<h2>About the expected figures</h2>
<p>Confidence-based performance estimation takes every served churn risk at its word: were each
contact's outcome drawn with probability equal to its risk, these are the ROC-AUC, churn rate
and capture to expect (computed exactly, not sampled). It needs no labels, so it shows a change
months before the churn horizon closes; it trusts calibration, so it cannot see a change in how
journeys relate to churn that leaves the scores alone (concept drift): compare it with the
realised figures as labels arrive.</p>
<p>Machine-readable figures: <code>{JSON_NAME}</code> beside this page.</p>
</body></html>
"""
