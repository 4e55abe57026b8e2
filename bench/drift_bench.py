"""Measures what drift monitoring costs the Score path: observe() per scored row, and refresh().

Goal (issue 14 item 3): observe() under 5 us per call. Baselines in the same run: an empty
function call with the same arguments, and a list append. The reference comes from 20,000
synthetic rows (counts, one float column with missing values, both scores), built as training
builds it; neither cost depends on the values. Needs no demo.
"""

import time
from collections.abc import Callable

import numpy as np

from features.catalog import MODEL_FEATURES
from service.drift import MIN_ROWS, WINDOW_ROWS, DriftMonitor, DriftReference, parse_reference
from training.reference_distributions import reference_distributions

GOAL_MICROS = 5.0
CALLS = 200_000
ROUNDS = 5


def synthetic_rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs and both scores shaped like the demo's."""
    rng = np.random.default_rng(seed)
    matrix = rng.poisson(2.0, size=(count, len(MODEL_FEATURES))).astype(np.float64)
    waits = rng.exponential(60.0, count)
    waits[rng.random(count) < 0.2] = np.nan
    matrix[:, MODEL_FEATURES.index("wait_seconds_avg_7d")] = waits
    return matrix, rng.uniform(0, 100, count), rng.beta(2, 8, count)


def synthetic_reference() -> DriftReference:
    raw = reference_distributions(*synthetic_rows(20_000, seed=1), MODEL_FEATURES)
    return parse_reference(raw, "bench", MODEL_FEATURES)


def per_call(call: Callable[[np.ndarray, float, float], object], rows: list[np.ndarray],
             effort: list[float], churn: list[float]) -> float:
    """Microseconds per call, best of ROUNDS rounds of CALLS calls (the loop's cost included, as
    in every measure here)."""
    count = len(rows)
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for n in range(CALLS):
            k = n % count
            call(rows[k], effort[k], churn[k])
        best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
    return best


def main() -> None:
    matrix, effort, churn = synthetic_rows(1_000, seed=2)
    rows, efforts, churns = list(matrix), [float(e) for e in effort], [float(c) for c in churn]

    def empty(row: np.ndarray, effort: float, churn: float) -> None:
        pass

    appended: list[np.ndarray] = []

    def append(row: np.ndarray, effort: float, churn: float) -> None:
        appended.append(row)
        if len(appended) >= 1_000:
            appended.clear()

    monitor = DriftMonitor(synthetic_reference())
    costs = {"empty function call": per_call(empty, rows, efforts, churns),
             "list append": per_call(append, rows, efforts, churns),
             "DriftMonitor.observe": per_call(monitor.observe, rows, efforts, churns)}
    batch, batch_effort, batch_churn = synthetic_rows(500, seed=3)
    started = time.perf_counter()
    for _ in range(2_000):
        monitor.observe_many(batch, batch_effort, batch_churn)
    many = (time.perf_counter() - started) / (2_000 * len(batch)) * 1e6

    refreshes = []
    for n in range(50):
        monitor.observe(rows[n], efforts[n], churns[n])  # a new row, so the refresh recomputes
        started = time.perf_counter()
        monitor.refresh()
        refreshes.append(time.perf_counter() - started)
    refresh_ms = float(np.median(refreshes)) * 1e3

    baseline = costs["empty function call"]
    print(f"Drift monitoring, {len(MODEL_FEATURES)} model inputs and 2 scores, window of "
          f"{WINDOW_ROWS:,} rows (PSI from {MIN_ROWS} rows)")
    print(f"Per call, best of {ROUNDS} rounds of {CALLS:,} calls (the calling loop included):")
    for name, micros in costs.items():
        print(f"  {name:28s} {micros:6.3f} us   {micros / baseline:5.2f}x the empty call")
    observe = costs["DriftMonitor.observe"]
    print(f"  observe(): {observe - baseline:.3f} us above the empty call; goal < {GOAL_MICROS} us "
          f"per call: {'met' if observe < GOAL_MICROS else 'NOT met'}")
    print(f"  observe_many(), batches of 500: {many:.3f} us per row")
    print(f"refresh() over a full window, median of 50: {refresh_ms:.2f} ms "
          f"({refresh_ms * 1e3 / WINDOW_ROWS:.3f} us per window row; every 10 s by default)")


if __name__ == "__main__":
    main()
