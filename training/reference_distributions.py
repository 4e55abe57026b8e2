"""Reference distributions of the model inputs and both scores, the baseline serving measures drift against.

Each column is cut at its deciles, deduplicated (a count with 70% zeros gets one bin for the zeros,
not seven), plus its training minimum and just above its maximum, so that values below or above
anything seen in training land in bins of their own, empty in the reference. Missing values (NaN)
have a bin of their own, last. A value x falls in bin i when edges[i-1] <= x < edges[i]; the same
`bin_counts` bins the reference here and the live rows in service/drift.py.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT = 1
QUANTILES = 10
SCORES = ("effort_score", "churn_risk")
# Shares below this count as this in the PSI, so an empty bin does not make it infinite.
SHARE_FLOOR = 1e-4


def bin_edges(values: np.ndarray, quantiles: int = QUANTILES) -> np.ndarray:
    """Sorted distinct cut points of a column: its minimum, inner quantiles, and the next float
    above its maximum; empty when every value is missing."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.empty(0)
    inner = np.quantile(present, np.arange(1, quantiles) / quantiles, method="inverted_cdf")
    low, high = present.min(), np.nextafter(present.max(), np.inf)
    return np.unique(np.concatenate(([low], inner, [high])))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: len(edges) + 1 value bins, then the missing bin."""
    index = np.searchsorted(edges, values, side="right")
    # searchsorted puts NaN after every edge: move it past the last value bin.
    index[np.isnan(values)] = len(edges) + 1
    return np.bincount(index, minlength=len(edges) + 2)


def psi(actual: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index of two share vectors: sum((a - r) * ln(a / r))."""
    a = np.maximum(actual, SHARE_FLOOR)
    r = np.maximum(reference, SHARE_FLOOR)
    return float(np.sum((a - r) * np.log(a / r)))


def reference_distributions(matrix: np.ndarray, effort_score: np.ndarray, churn_risk: np.ndarray,
                            features: Sequence[str]) -> dict[str, Any]:
    """The JSON form written beside the models: per model input (in `features` order, the
    columns of `matrix`) and per score, its bin edges and the reference share of each bin."""
    columns = [*(matrix[:, j] for j in range(matrix.shape[1])), effort_score, churn_risk]
    names = [*features, *SCORES]
    entries = []
    for name, values in zip(names, columns, strict=True):
        values = np.asarray(values, dtype=np.float64)
        edges = bin_edges(values)
        counts = bin_counts(values, edges)
        entries.append({"name": name, "edges": edges.tolist(),
                        "shares": (counts / max(len(values), 1)).tolist()})
    return {"format": FORMAT, "rows": int(matrix.shape[0]), "quantiles": QUANTILES,
            "features": entries[:len(features)], "scores": entries[len(features):]}
