"""The evaluation report: one self-contained HTML page with plots, beside metrics.json."""

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen: render to PNG
import matplotlib.pyplot as plt

TOP_FEATURES = 12


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _roc_pr(churn: dict[str, Any]) -> str:
    figure, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4))
    roc.plot(churn["roc_curve"]["x"], churn["roc_curve"]["y"],
             label=f"churn model (AUC {churn['roc_auc']:.3f})")
    roc.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    rule = churn["rule"]
    base = churn["base_rate"]
    rule_fpr = (rule["share"] - rule["capture"] * base) / (1 - base)
    roc.scatter([rule_fpr], [rule["capture"]], color="red", zorder=3,
                label=f"rule (AUC {rule['roc_auc']:.3f}), flags {rule['share']:.0%}")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    roc.legend(loc="lower right", fontsize=8)
    pr.plot(churn["pr_curve"]["x"], churn["pr_curve"]["y"],
            label=f"churn model (AP {churn['pr_auc']:.3f})")
    pr.axhline(churn["base_rate"], linestyle=":", color="grey", label="base rate")
    pr.scatter([rule["capture"]], [rule["lift"] * churn["base_rate"]], color="red", zorder=3,
               label="rule")
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    pr.legend(fontsize=8)
    return _png(figure)


def _calibration(churn: dict[str, Any]) -> str:
    curve = churn["calibration_curve"]
    figure, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    ax.plot(curve["raw_predicted"], curve["raw_observed"], "o--", label="before calibration")
    ax.plot(curve["predicted"], curve["observed"], "o-", label="beta calibration (served)")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate",
           title=f"Calibration: ECE {churn['calibration_error']:.3f} "
                 f"({churn['calibration_error_uncalibrated']:.3f} before), Brier "
                 f"{churn['brier']:.3f} ({churn['brier_uncalibrated']:.3f} before)")
    ax.legend(fontsize=8)
    return _png(figure)


def _lift(churn: dict[str, Any]) -> str:
    bars = [("rule", churn["rule"]["lift"], churn["rule"]["capture"], churn["rule"]["share"])]
    if churn["at_rule_share"]:
        s = churn["at_rule_share"]
        bars.append(("model,\nrule's share", s["lift"], s["capture"], s["share"]))
    s = churn["at_senior_share"]
    bars.append(("model,\nsenior share", s["lift"], s["capture"], s["share"]))
    figure, (lift, capture) = plt.subplots(1, 2, figsize=(10, 3.5))
    names = [f"{b[0]}\n({b[3]:.0%} of contacts)" for b in bars]
    lift.bar(names, [b[1] for b in bars], color=["tab:red", "tab:blue", "tab:green"][:len(bars)])
    lift.set(title="Lift: churn rate among flagged / base rate", ylabel="lift")
    capture.bar(names, [b[2] for b in bars], color=["tab:red", "tab:blue", "tab:green"][:len(bars)])
    capture.set(title="Capture: share of churners flagged", ylabel="capture", ylim=(0, 1))
    for ax in (lift, capture):
        ax.tick_params(axis="x", labelsize=8)
    return _png(figure)


def _importance(importance: dict[str, dict[str, float]]) -> str:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, name in zip(axes, ("churn", "effort"), strict=True):
        top = sorted(importance[name].items(), key=lambda kv: kv[1])[-TOP_FEATURES:]
        ax.barh([k for k, _ in top], [v for _, v in top])
        ax.set(title=f"{name} model: share of total gain", xlabel="share")
        ax.tick_params(axis="y", labelsize=8)
    return _png(figure)


def _shap(summary: dict[str, list[dict[str, Any]]]) -> str:
    """Beeswarm-style summary: each dot a test row, placed by its contribution, coloured by the
    feature's value (percentile among the rows; grey when missing)."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, (name, unit) in zip(axes, (("churn", "log-odds of churn"),
                                      ("effort", "CES points towards more effort")), strict=True):
        features = summary[name][::-1]
        for y, entry in enumerate(features):
            contributions = entry["contribution"]
            colours = [0.5 if p is None else p for p in entry["value_percentile"]]
            jitter = [y + 0.3 * ((i * 7919) % 100 / 100 - 0.5) for i in range(len(contributions))]
            ax.scatter(contributions, jitter, c=colours, cmap="coolwarm", s=6, vmin=0, vmax=1)
        ax.set_yticks(range(len(features)), [e["feature"] for e in features], fontsize=8)
        ax.axvline(0, color="grey", linewidth=0.5)
        ax.set(xlabel=f"contribution ({unit})", title=f"{name} model")
    return _png(figure)


def _tradeoff(tradeoff: list[dict[str, float]], target: float) -> str:
    shares = [p["share"] for p in tradeoff]
    figure, ax = plt.subplots(figsize=(6, 4))
    ax.plot(shares, [p["capture"] for p in tradeoff], label="churners caught (capture)")
    ax.plot(shares, [p["precision"] for p in tradeoff], label="churners among those sent")
    ax.axvline(target, linestyle=":", color="grey", label=f"target senior share {target:.0%}")
    ax.set(xlabel="share of contacts sent senior (by churn risk)", ylabel="share",
           title="Threshold trade-off (test rows)")
    ax.legend(fontsize=8)
    return _png(figure)


def _effort_by_answer(table: list[dict[str, Any]]) -> str:
    figure, ax = plt.subplots(figsize=(6, 4))
    for entry in table:
        if entry["predicted_quantiles"]:
            p10, p25, p50, p75, p90 = entry["predicted_quantiles"]
            a = entry["answer"]
            ax.plot([a, a], [p10, p90], color="tab:blue", linewidth=1)
            ax.plot([a, a], [p25, p75], color="tab:blue", linewidth=6, alpha=0.5)
            ax.scatter([a], [p50], color="black", zorder=3, s=12)
    ax.plot([1, 7], [1, 7], ":", color="grey", label="predicted = answered")
    ax.set(xlabel="CES answered (1-7)", ylabel="CES predicted",
           title="Effort: predicted against answered (10/25/50/75/90%)")
    ax.legend(fontsize=8)
    return _png(figure)


def _tuning(tuning: dict[str, Any], trees: dict[str, int]) -> str:
    rows = []
    for name in ("churn", "effort"):
        chosen = tuning[name]
        params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in chosen["hyperparameters"].items())
        folds = ", ".join(f"{s:.3f}" for s in chosen["fold_scores"])
        rows.append([name, str(trees[name]), html.escape(params), folds])
    return _table(rows, ["model", "trees", "hyperparameters (chosen)",
                         "fold scores (ROC-AUC for churn, L2 for effort)"])


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _f(value: Any, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None or value != value else pattern.format(value)


def _gate(gate: dict[str, Any] | None, churn: dict[str, Any]) -> str:
    """The new model beside the serving one on the new test rows, and the promotion verdict."""
    incumbent = (gate or {}).get("incumbent")
    if not incumbent:
        return "<h2>Against the serving model</h2><p>No model was serving: no comparison.</p>"
    if not incumbent["comparable"]:
        return (f"<h2>Against the serving model</h2><p>{html.escape(incumbent['version'])} "
                f"cannot be compared: {html.escape(incumbent['why'])}.</p>")
    table = _table([
        ["churn ROC-AUC", _f(churn["roc_auc"]), _f(incumbent["churn_roc_auc"])],
        ["expected calibration error", _f(churn["calibration_error"]),
         _f(incumbent["calibration_error"])],
    ], ["same test rows", "this model", f"serving: {html.escape(incumbent['version'])}"])
    refused = (gate or {}).get("refusals") or []
    verdict = ("Refused for promotion unless forced: " + html.escape("; ".join(refused))
               if refused else "May replace the serving model.")
    return f"<h2>Against the serving model</h2>{table}<p>{verdict}</p>"


def _truth(truth: dict[str, Any] | None) -> str:
    if truth is None:
        return ("<p>No true probabilities: real data has none; on synthetic data "
                "<code>effort simulate --truth-samples</code> writes them.</p>")
    return _table([
        ["churn ROC-AUC of the true probabilities", _f(truth["truth_roc_auc"])],
        ["share of the rule-to-truth ROC-AUC headroom, models", _f(truth["headroom_captured"],
                                                                   "{:.0%}")],
        ["share of the headroom, plain LightGBM on raw event counts",
         _f(truth.get("plain_baseline_headroom_captured"), "{:.0%}")],
        ["mean |churn risk - true probability|", _f(truth["mean_absolute_error_to_truth"])],
        ["calibration error of the true probabilities (sampling noise)",
         _f(truth["truth_calibration_error"])],
    ], [f"against the simulator's truth ({truth['rows']:,} test rows)", "value"])


def write_report(path: Path, manifest: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Writes the HTML evaluation report of a model version."""
    churn, effort = metrics["churn"], metrics["effort"]
    banner = ("<p class='synthetic'>SYNTHETIC DATA: these figures describe Effort's journey "
              "simulator, not a real contact center.</p>" if manifest["synthetic_data"] else "")
    plain = metrics.get("plain_baseline", {})
    side_by_side = _table([
        ["churn ROC-AUC", _f(churn["roc_auc"]), _f(churn["rule"]["roc_auc"]),
         _f(plain.get("churn_roc_auc"))],
        ["churn PR-AUC", _f(churn["pr_auc"]), "n/a", "n/a"],
        ["churn Brier score (lower is better)", _f(churn["brier"]), "n/a", "n/a"],
        ["lift at the rule's share", _f((churn["at_rule_share"] or {}).get("lift"), "{:.2f}"),
         _f(churn["rule"]["lift"], "{:.2f}"), "n/a"],
        ["capture at the rule's share", _f((churn["at_rule_share"] or {}).get("capture"), "{:.1%}"),
         _f(churn["rule"]["capture"], "{:.1%}"), "n/a"],
        [f"lift / capture at senior share {churn['at_senior_share']['share']:.0%}",
         f"{_f(churn['at_senior_share']['lift'], '{:.2f}')} / "
         f"{_f(churn['at_senior_share']['capture'], '{:.1%}')}", "n/a", "n/a"],
        ["effort MAE, CES points", _f(effort["mae_ces"]),
         f"{_f(effort['mae_ces_mean_baseline'])} (mean answer)", "n/a"],
        ["effort Spearman with CES", _f(effort["spearman"]), _f(effort["rule_spearman"]),
         _f(plain.get("effort_spearman"))],
    ], ["metric (held-out test rows)", "models", "rule: 3+ contacts in 7 days or open complaint",
        "plain LightGBM on raw event counts"])
    channels = _table([[c["channel"], str(c["churn_rows"]), _f(c.get("churn_roc_auc")),
                        str(c["ces_rows"]), _f(c.get("effort_mae_ces"))]
                       for c in metrics["per_channel"]],
                      ["channel of the contact", "churn rows", "churn ROC-AUC", "CES rows",
                       "effort MAE"])
    fingerprints = ", ".join(f"{name} {str(digest)[:16]}"
                             for name, digest in manifest.get("data_fingerprints", {}).items())
    if not metrics["per_channel"]:
        channels = ("<p>Empty: no test row carries the channel of an arriving contact (no contact "
                    "was recorded at those labels' label_time), so there is nothing to group by."
                    "</p>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Effort model {manifest['version']}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:left}}.synthetic{{background:#fff3cd;border:1px solid #e0b000;padding:8px;
font-weight:bold}}img{{max-width:100%}}</style></head><body>
<h1>Effort model {html.escape(manifest['version'])}</h1>{banner}
<p>Trained {html.escape(manifest['created_at'])} on {manifest['rows']['total']:,} label rows
({manifest['rows']['ces_labels']:,} CES answers, {manifest['rows']['churn_labels']:,} churn
outcomes with a closed {manifest['churn_horizon_days']}-day horizon), labels from
{html.escape(manifest['training_window']['start'])} to
{html.escape(manifest['training_window']['end'])}, feature service
<code>{html.escape(manifest['feature_service'])}</code>. Split by customer: 85% of customers train
(rounds and hyperparameters by {manifest['tuning']['folds']}-fold expanding-window,
customer-disjoint cross-validation within them, {manifest['tuning']['trials']} trials; churn
calibrated on their out-of-fold scores), 15% are held out; all figures below are on the held-out
customers' rows, customers the models never saw.
Thresholds: effort score &ge; {manifest['thresholds']['effort_score']:.1f} or churn risk &ge;
{manifest['thresholds']['churn_risk']:.3f} (or an unacknowledged complaint) sends a contact senior:
{metrics['senior_share_test_period']:.1%} of the held-out customers' contacts, target
{manifest['senior_share_target']:.0%}.</p>
<h2>Models beside today's rule</h2>{side_by_side}
<h2>Against the simulator's true probabilities</h2>{_truth(metrics.get("truth"))}
{_gate(metrics.get("promotion_gate"), churn)}
<h2>Churn: ranking</h2>{_roc_pr(churn)}
<h2>Churn: calibration</h2>{_calibration(churn)}
<p>Beta calibration, strictly increasing: the test rows have
{churn['distinct_risk_share']:.1%} as many distinct churn risks as distinct raw scores (goal at
least 95%); expected calibration error {churn['calibration_error']:.3f} (goal at most 0.02).</p>
<h2>Churn: lift and capture</h2>{_lift(churn)}
<h2>Churn: threshold trade-off</h2>{_tradeoff(metrics["tradeoff"], manifest["senior_share_target"])}
<h2>What drives the scores (SHAP summary)</h2>{_shap(metrics["shap_summary"])}
<p>Each dot is a test row: where it sits is how much that feature moved its score, its colour the
feature's value among the rows (blue low, red high, grey missing). Exact TreeSHAP values.</p>
<h2>Effort: predicted against answered</h2>{_effort_by_answer(metrics["effort_by_answer"])}
<h2>Trees and hyperparameters</h2>{_tuning(manifest["tuning"], metrics["trees"])}
<p>Code {html.escape(str(manifest.get("code_commit")))}; data fingerprints (SHA-256):
{html.escape(fingerprints or "none given")}.</p>
<h2>By channel</h2>{channels}
<h2>Feature importance</h2>{_importance(metrics['importance'])}
<p>Machine-readable figures: <code>metrics.json</code> beside this page; the manifest holds the
headline figures, checksums and library versions.</p>
</body></html>
"""
    path.write_text(page)
