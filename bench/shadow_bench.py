"""Measures what a shadow challenger scoring every call costs the champion's Score latency.

Starts one `effort serve` on the demo data (a copy of var/models) with EFFORT_SHADOW_SHARE=1.0
and times sequential Score calls in blocks, turning SHADOW on and off between blocks (`effort
models shadow`, seen by the server within its poll interval), so that both arms run in the same
process on the same machine: two servers, one with a shadow and one without, differed by up to
10% in p99 with the same code. The challenger is the demo model under another version with the
thresholds its table fits for a 20% senior share (the demo's target is 15%): the same scores,
other tiers for some contacts.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
from ports import free_port
from score_bench import CUSTOMERS, start_server

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc
from service.shadow import GATHER_SECONDS
from training.registry import current_version, shadow, shadow_off

CALLS = 30_000  # per arm: p99 is the 300th slowest; with 4,000 its sampling error was about 5%
BLOCK = 500
BOOTSTRAP = 1000  # resamples for the ratio's 95% interval
POLL_SECONDS = 0.2
CHALLENGER = "shadow-bench"
CHALLENGER_SHARE = 0.20


def challenger_copy(models_dir: Path, original: str) -> None:
    """The served model under another version, with the thresholds of another senior share."""
    folder = models_dir / CHALLENGER
    shutil.copytree(models_dir / original, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = CHALLENGER
    table = manifest.get("threshold_table") or []
    if table:
        entry = min(table, key=lambda e: abs(e["share"] - CHALLENGER_SHARE))
        manifest["thresholds"] = {"effort_score": entry["effort_score"],
                                  "churn_risk": entry["churn_risk"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def serve(models_dir: Path, log_dir: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    """`effort serve` over `models_dir`: (process, gRPC port, metrics port)."""
    port, metrics_port = free_port(), free_port()
    os.environ.update({"EFFORT_MODELS_DIR": str(models_dir), "EFFORT_SHADOW_SHARE": "1.0",
                       "EFFORT_PREDICTION_LOG_DIR": str(log_dir),
                       "EFFORT_MODEL_POLL_SECONDS": str(POLL_SECONDS)})
    process, _ = start_server(port, metrics_port)
    return process, port, metrics_port


def set_shadow(models_dir: Path, metrics_port: int, on: bool) -> None:
    """Turns SHADOW on or off and waits until the server has seen it."""
    if on:
        shadow(models_dir, CHALLENGER)
    else:
        shadow_off(models_dir)
    wanted = f'effort_shadow_info{{version="{CHALLENGER}"}}'
    deadline = time.monotonic() + 30
    while metric_samples(metrics_port, "effort_shadow_info").get(wanted, 0.0) != float(on):
        if time.monotonic() > deadline:
            raise SystemExit("the server did not follow SHADOW within 30 s")
        time.sleep(POLL_SECONDS / 2)
    # The last pass of the previous arm (the thread gathers calls for GATHER_SECONDS) ends
    # before the block starts.
    time.sleep(POLL_SECONDS + 2 * GATHER_SECONDS)


def timed_block(stub: pb_grpc.ScoringServiceStub, start: int, calls: int) -> list[float]:
    """Milliseconds per Score call, one call at a time."""
    latencies = []
    for i in range(start, start + calls):
        began = time.perf_counter()
        stub.Score(pb.ScoreRequest(customer_id=CUSTOMERS[i % len(CUSTOMERS)]), timeout=5)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def metric_samples(metrics_port: int, name: str) -> dict[str, float]:
    """Every sample of the metric family `name` on a metrics page, by its labels."""
    page = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    samples = {}
    for line in page.decode().splitlines():
        match = re.fullmatch(rf"({name}\S*?)(\{{.*\}})? (\S+)", line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def p99_ratio_interval(with_shadow: list[list[float]], without: list[list[float]],
                       seed: int = 7) -> tuple[float, float]:
    """A 95% bootstrap interval of p99(with) / p99(without), resampling each arm's blocks, not
    its calls: slow calls come in bursts (the machine's other work), and an interval from
    resampled calls was too narrow (an A/A run measured 0.963 with 0.933-0.987)."""
    rng = np.random.default_rng(seed)

    def p99(blocks: list[list[float]]) -> float:
        picked = rng.integers(0, len(blocks), len(blocks))
        return float(np.quantile(np.concatenate([blocks[i] for i in picked]), 0.99))

    ratios = [p99(with_shadow) / p99(without) for _ in range(BOOTSTRAP)]
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS, help="Score calls per arm")
    parser.add_argument("--aa", action="store_true",
                        help="both arms without a shadow: how far apart the same code measures")
    args = parser.parse_args()
    source = Path("var/models")
    version = current_version(source) if source.is_dir() else None
    if version is None:
        raise SystemExit("no demo model: run `make demo` first")
    with tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp:
        models_dir = Path(tmp) / "models"
        shutil.copytree(source, models_dir)
        challenger_copy(models_dir, version)
        server, port, metrics_port = serve(models_dir, Path(tmp) / "log")
        arms = {"no shadow": False, "shadow, share 1.0": not args.aa}
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.ScoringServiceStub(channel)
                timed_block(stub, 0, 200)  # warm-up
                blocks: dict[str, list[list[float]]] = {name: [] for name in arms}
                starts = range(0, args.calls, BLOCK)
                for number, start in enumerate(starts, start=1):
                    # Arms take turns going first: the arm after a SHADOW change measured a
                    # few % faster whichever it was (A/A), so a fixed order biased the ratio.
                    order = list(arms.items())
                    for name, on in order if number % 2 else order[::-1]:
                        set_shadow(models_dir, metrics_port, on)
                        blocks[name].append(timed_block(stub, start, BLOCK))
                    print(f"  block {number}/{len(starts)}", end="\r", file=sys.stderr, flush=True)
                print(file=sys.stderr)
            agreement = metric_samples(metrics_port, "effort_shadow_tier_agreement_total")
            seconds = metric_samples(metrics_port, "effort_shadow_seconds")
            dropped = metric_samples(metrics_port, "effort_shadow_dropped_total")
            difference = metric_samples(metrics_port, "effort_shadow_churn_risk_difference")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"Shadow challenger cost on the SYNTHETIC demo ({args.calls:,} sequential Score calls "
          f"per arm in one server, SHADOW on and off in alternating blocks of {BLOCK})"
          + (" - A/A: both arms WITHOUT a shadow" if args.aa else ""))
    latencies = {name: [ms for block in arm for ms in block] for name, arm in blocks.items()}
    p99 = {}
    for name, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        p99[name] = q[98]
        print(f"  {name:18s} p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms")
    ratio = p99["shadow, share 1.0"] / p99["no shadow"]
    low, high = p99_ratio_interval(blocks["shadow, share 1.0"], blocks["no shadow"])
    print(f"  p99 with shadow / without = {ratio:.3f}, 95% interval {low:.3f}-{high:.3f} "
          f"(goal <= 1.05)")
    same = agreement.get('effort_shadow_tier_agreement_total{agreement="same"}', 0.0)
    different = agreement.get('effort_shadow_tier_agreement_total{agreement="different"}', 0.0)
    paired = same + different
    print(f"  tier agreement {same / paired:.1%} of {paired:,.0f} paired answers "
          f"(challenger: thresholds for a {CHALLENGER_SHARE:.0%} senior share)" if paired
          else "  no answer was paired")
    count = seconds.get("effort_shadow_seconds_count", 0.0)
    if count:
        print(f"  challenger time per call, mean {seconds['effort_shadow_seconds_sum'] / count * 1e3:.3f}"
              f" ms over {count:,.0f} calls; dropped "
              f"{dropped.get('effort_shadow_dropped_total', 0.0):,.0f}")
    risk = difference.get("effort_shadow_churn_risk_difference_count", 0.0)
    if risk:
        print(f"  mean |churn risk difference| "
              f"{difference['effort_shadow_churn_risk_difference_sum'] / risk:.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
