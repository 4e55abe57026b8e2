"""Input and score drift: the last scored rows against the model's reference distributions, as PSI gauges.

Scoring only copies each scored row (model inputs, effort score, churn risk) into a ring of the
last `window` rows, preallocated (`observe`, under a microsecond). Every few seconds `refresh`
bins the ring with the reference's edges (training/reference_distributions.py, the same binning)
and sets, per model input and per score, the population stability index
PSI = sum((a - r) * ln(a / r)) of the window's bin shares a against the reference's r:
effort_feature_drift_psi{feature}, effort_score_drift_psi{score} and effort_drift_window_rows.
Below 0.1 the distributions match; 0.1 to 0.25 is a moderate shift; above 0.25 a large one.

The window counts only rows scored since the current reference was swapped in: with fewer than
`min_rows` of them, or with no reference (a model folder from before reference distributions),
every PSI reads NaN, not 0, so that it is never mistaken for "no drift". Memory is the ring's,
whatever the traffic.

`observe` runs on the serving loop and `refresh` in a polling thread without a lock between them:
a refresh racing a write may read the oldest row of its window half replaced by the newest one.
Each column is binned on its own, so such a row still adds one real value per column.
"""

import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from features.catalog import MODEL_FEATURES
from service import metrics
from service.polling import Poller
from training.model_folder import REFERENCE
from training.reference_distributions import FORMAT, SCORES, bin_counts, psi

log = logging.getLogger(__name__)

WINDOW_ROWS = 4096
MIN_ROWS = 500
REFRESH_SECONDS = 10.0


@dataclass(frozen=True, eq=False)
class DriftReference:
    """A model's reference distributions: for each model input, then each score, its bin edges
    and the reference share of each bin (the last one: missing values)."""

    version: str
    names: tuple[str, ...]
    edges: tuple[np.ndarray, ...]
    shares: tuple[np.ndarray, ...]


def parse_reference(raw: Any, version: str, features: Sequence[str]) -> DriftReference:
    """The reference of reference_distributions.json; raises ValueError when it is not one for
    these model inputs."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"not a format {FORMAT} reference")
    entries = [*raw["features"], *raw["scores"]]
    names = tuple(str(entry["name"]) for entry in entries)
    if names != (*features, *SCORES):
        raise ValueError("its columns are not the model's inputs and scores")
    edges, shares = [], []
    for entry in entries:
        cut = np.asarray(entry["edges"], dtype=np.float64)
        share = np.asarray(entry["shares"], dtype=np.float64)
        if (cut.ndim != 1 or share.shape != (len(cut) + 2,) or np.any(np.diff(cut) <= 0)
                or not np.isfinite(share).all() or abs(share.sum() - 1.0) > 1e-6):
            raise ValueError(f"bins of {entry['name']} are malformed")
        edges.append(cut)
        shares.append(share)
    return DriftReference(version, names, tuple(edges), tuple(shares))


def load_reference(folder: Path, checksums: Mapping[str, str], version: str,
                   features: Sequence[str]) -> DriftReference | None:
    """The reference of a verified model folder, or None (logged once) when it has none or it
    cannot be read: drift is then not measured, and the model is served all the same.

    Only a file the manifest checksums is read, so it was verified with the models."""
    if REFERENCE not in checksums:
        log.info("model %s has no %s (trained before drift monitoring): input and score drift "
                 "are not measured for it", version, REFERENCE)
        return None
    try:
        return parse_reference(json.loads((folder / REFERENCE).read_text()), version, features)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("model %s: %s cannot be used (%s): input and score drift are not measured "
                    "for it", version, REFERENCE, error)
        return None


class DriftMonitor:
    """The last `window` scored rows (a power of two) and their PSI against a reference."""

    def __init__(self, reference: DriftReference | None, window: int = WINDOW_ROWS,
                 min_rows: int = MIN_ROWS, features: Sequence[str] = MODEL_FEATURES) -> None:
        if window <= 0 or window & (window - 1):
            raise ValueError(f"the drift window must be a power of two, not {window}")
        self._inputs = len(features)
        self._names = (*features, *SCORES)
        self._ring = np.zeros((window, self._inputs + 2), dtype=np.float64)
        self._mask = window - 1
        self._min_rows = min_rows
        self._seen = 0  # rows observed since construction; only observe() writes it
        # The reference and the value of _seen when it was swapped in, replaced as one.
        self._current: tuple[DriftReference | None, int] = (self._usable(reference), 0)
        self._lock = threading.Lock()
        # What the last refresh measured, and its values: an idle server's refresh is free.
        self._refreshed: tuple[DriftReference, int] | None = None
        self._last: dict[str, float] = {}
        self._gauges = ([metrics.FEATURE_DRIFT_PSI.labels(feature=name) for name in features]
                        + [metrics.SCORE_DRIFT_PSI.labels(score=name) for name in SCORES])

    @property
    def window(self) -> int:
        """Rows the ring holds."""
        return len(self._ring)

    def observe(self, inputs_row: np.ndarray, effort: float, churn: float) -> None:
        """Records one scored row: its model inputs (model feature order) and both scores."""
        i = self._seen & self._mask
        ring = self._ring
        ring[i, :self._inputs] = inputs_row
        ring[i, self._inputs] = effort
        ring[i, self._inputs + 1] = churn
        self._seen += 1

    def observe_many(self, matrix: np.ndarray, effort: np.ndarray, churn: np.ndarray) -> None:
        """Records scored rows, as many observe() calls (only the last `window` are kept)."""
        count = len(matrix)
        keep = min(count, len(self._ring))
        slots = np.arange(self._seen + count - keep, self._seen + count) & self._mask
        self._ring[slots, :self._inputs] = matrix[count - keep:]
        self._ring[slots, self._inputs] = effort[count - keep:]
        self._ring[slots, self._inputs + 1] = churn[count - keep:]
        self._seen += count

    def swap(self, reference: DriftReference | None) -> None:
        """Compares with `reference` (the new model's) from now on, over rows observed from now
        on: the window's scores came from the old model. The gauges follow at the next refresh."""
        self._current = (self._usable(reference), self._seen)

    def window_rows(self) -> int:
        """Rows in the window: observed since the current reference was swapped in, at most
        the window's size."""
        return min(self._seen - self._current[1], len(self._ring))

    def refresh(self) -> dict[str, float]:
        """Sets the gauges from the window and returns the PSI by column name; empty (every
        gauge NaN) with no reference or fewer than `min_rows` rows."""
        with self._lock:
            reference, since = self._current
            seen = self._seen
            rows = min(seen - since, len(self._ring))
            metrics.DRIFT_WINDOW_ROWS.set(rows)
            if reference is None or rows < self._min_rows:
                self._refreshed = None
                for gauge in self._gauges:
                    gauge.set(math.nan)
                return {}
            if self._refreshed == (reference, seen):
                return self._last
            # A column-major copy; the rows' order does not matter to their histograms.
            window = np.array(self._ring if rows == len(self._ring)
                              else self._ring[np.arange(seen - rows, seen) & self._mask], order="F")
            values = {}
            for column, (name, edges, shares, gauge) in enumerate(zip(
                    self._names, reference.edges, reference.shares, self._gauges, strict=True)):
                value = psi(bin_counts(window[:, column], edges) / rows, shares)
                gauge.set(value)
                values[name] = value
            self._refreshed, self._last = (reference, seen), values
            return values

    def _usable(self, reference: DriftReference | None) -> DriftReference | None:
        if reference is not None and reference.names != self._names:
            log.warning("the reference of model %s is for other columns: input and score drift "
                        "are not measured for it", reference.version)
            return None
        return reference


def start_refresher(monitor: DriftMonitor, seconds: float = REFRESH_SECONDS) -> Poller:
    """Refreshes the monitor's gauges every `seconds` in a daemon thread (0: never); stop() it
    when the server stops."""
    poller = Poller(monitor.refresh, seconds, "drift-refresh")
    poller.start()
    return poller
