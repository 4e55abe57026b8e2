"""Exact path-dependent TreeSHAP for LightGBM boosters, compiled with numba and precomputed per leaf.

A leaf's share of a row's Shapley values depends only on which of the leaf's path features the row
satisfies ("hot") and which it does not ("cold"). So each leaf stores one number per hot subset
(after FastTreeSHAP v2, Yang 2021, with 2^d numbers per leaf instead of 2^d x d), and explaining a
row sweeps each tree once to find every leaf's cold pattern, then adds d table-derived shares per
leaf. The result equals LightGBM's `pred_contrib` (tests/unit/test_tree_shap.py on toy models,
tests/integration/test_tree_shap_demo.py on the demo's); its cost is measured in
bench/score_bench.py.
"""

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from service.model_file import ModelFile

MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING_TYPES = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
MIN_ZERO_FRACTION = 1e-12  # floor for a child's share of its parent's training rows
MAX_PATH_FEATURES = 16  # a leaf's table has 2^d entries; deeper paths would need another method


class UnsupportedModel(ValueError):
    """A booster this explainer cannot handle exactly (categorical splits, very deep paths)."""


@dataclass(frozen=True)
class _Trees:
    """All trees of a booster flattened into arrays; children < 0 are leaves (~child)."""

    roots: np.ndarray            # int32 per tree, node index or ~leaf
    feature: np.ndarray          # int32 per internal node
    threshold: np.ndarray        # float64 per internal node
    missing: np.ndarray          # int8 per internal node
    default_left: np.ndarray     # bool per internal node
    left: np.ndarray             # int32 per internal node
    right: np.ndarray            # int32 per internal node
    bit: np.ndarray              # int8 per internal node: its feature's place on the path
    leaf_value: np.ndarray       # float64 per leaf
    leaf_features: np.ndarray    # int16, each leaf's unique path features, concatenated
    leaf_feature_start: np.ndarray  # int32 per leaf + 1
    leaf_zero_fraction: np.ndarray  # float64, aligned with leaf_features
    table_start: np.ndarray      # int64 per leaf + 1: where its table of 2^d entries begins


class TreeExplainer:
    """Scores and exact TreeSHAP contributions of one LightGBM model, in pred_contrib layout."""

    @classmethod
    def from_booster(cls, booster: Any) -> "TreeExplainer":
        """From a live lightgbm.Booster (tests and training; serving reads the file)."""
        dump = booster.dump_model()
        return cls(ModelFile(tuple(dump["feature_names"]), str(dump["objective"]),
                             dump["tree_info"]))

    def __init__(self, model: ModelFile) -> None:
        self.num_features = len(model.feature_names)
        self.num_trees = len(model.tree_info)
        self.objective = model.objective
        self._trees = _flatten(model.tree_info)
        trees = self._trees
        self._tables = np.zeros(int(trees.table_start[-1]), dtype=np.float64)
        self.expected_value = _fill_tables(
            trees.leaf_value, trees.leaf_feature_start, trees.leaf_zero_fraction,
            trees.table_start, self._tables)
        zero = trees.leaf_zero_fraction
        self._hot_ratio = (1.0 - zero) / zero

    def explain(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw scores, contributions with the expected value in the last column) per row."""
        matrix = self._checked(matrix)
        t = self._trees
        contributions = np.zeros((matrix.shape[0], self.num_features + 1), dtype=np.float64)
        _explain_rows(matrix, t.roots, t.feature, t.threshold, t.missing, t.default_left, t.left,
                      t.right, t.bit, t.leaf_features, t.leaf_feature_start,
                      self._hot_ratio, t.table_start, self._tables, contributions)
        contributions[:, -1] = self.expected_value
        return contributions.sum(axis=1), contributions

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.num_features:
            raise ValueError(f"expected rows of {self.num_features} features, got {matrix.shape}")
        return matrix

    def predict_raw(self, matrix: np.ndarray) -> np.ndarray:
        """Raw scores (sum of leaf values), as LightGBM's predict(raw_score=True)."""
        matrix = self._checked(matrix)
        t = self._trees
        out = np.zeros(matrix.shape[0], dtype=np.float64)
        _predict_rows(matrix, t.roots, t.feature, t.threshold, t.missing, t.default_left, t.left,
                      t.right, t.leaf_value, out)
        return out


def _flatten(tree_info: list[dict[str, Any]]) -> _Trees:
    """Walks LightGBM's JSON dump into flat arrays, merging repeated features on each path."""
    nodes: dict[str, list[Any]] = {k: [] for k in (
        "feature", "threshold", "missing", "default_left", "left", "right", "bit")}
    leaf_value: list[float] = []
    leaf_features: list[int] = []
    leaf_feature_start = [0]
    leaf_zero: list[float] = []
    table_start = [0]
    roots = []

    def visit(node: dict[str, Any], path: dict[int, float], count: float) -> int:
        if "leaf_value" in node:
            if len(path) > MAX_PATH_FEATURES:
                raise UnsupportedModel(f"a path uses {len(path)} features; at most "
                                       f"{MAX_PATH_FEATURES} are supported")
            leaf_value.append(float(node["leaf_value"]))
            leaf_features.extend(path.keys())
            leaf_zero.extend(path.values())
            leaf_feature_start.append(len(leaf_features))
            table_start.append(table_start[-1] + (1 << len(path)))
            return ~(len(leaf_value) - 1)
        if node["decision_type"] != "<=":
            raise UnsupportedModel("categorical splits are not supported by the fast explainer")
        index = len(nodes["feature"])
        feature = int(node["split_feature"])
        bit = list(path).index(feature) if feature in path else len(path)
        for key, value in (("feature", feature), ("threshold", float(node["threshold"])),
                           ("missing", _MISSING_TYPES[node["missing_type"]]),
                           ("default_left", bool(node["default_left"])), ("left", 0),
                           ("right", 0), ("bit", bit)):
            nodes[key].append(value)
        for side in ("left", "right"):
            child = node[f"{side}_child"]
            child_count = float(child.get("internal_count", child.get("leaf_count", 0)))
            # A floor instead of 0 keeps the (1 - z)/z factor finite; LightGBM leaves hold data.
            fraction = max(child_count / count if count > 0 else 0.0, MIN_ZERO_FRACTION)
            nodes[side][index] = visit(child, {**path, feature: path.get(feature, 1.0) * fraction},
                                       child_count)
        return index

    for tree in tree_info:
        root = tree["tree_structure"]
        roots.append(visit(root, {}, float(root.get("internal_count", root.get("leaf_count", 0)))))

    def ints(values: list[Any], dtype: type = np.int32) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    return _Trees(
        roots=ints(roots), feature=ints(nodes["feature"]),
        threshold=np.asarray(nodes["threshold"], dtype=np.float64), missing=ints(nodes["missing"], np.int8),
        default_left=np.asarray(nodes["default_left"], dtype=np.bool_), left=ints(nodes["left"]),
        right=ints(nodes["right"]), bit=ints(nodes["bit"], np.int8),
        leaf_value=np.asarray(leaf_value, dtype=np.float64), leaf_features=ints(leaf_features, np.int16),
        leaf_feature_start=ints(leaf_feature_start),
        leaf_zero_fraction=np.asarray(leaf_zero, dtype=np.float64), table_start=ints(table_start, np.int64))


@numba.njit(cache=True)
def _fill_tables(leaf_value: np.ndarray, leaf_feature_start: np.ndarray,
                 zero_fraction: np.ndarray, table_start: np.ndarray, tables: np.ndarray) -> float:
    """Fills each leaf's table F, one entry per hot subset H, and returns the expected value.

    For path features P (d of them) with zero fractions z, hot set H and cold set C, feature i
    gets v (1 - z_i) prod_C z G(H - i) when hot and -v z_i prod_{C - i} z G(H) when cold, where
    G(H) = sum_k k!(d-k-1)!/d! [t^k] prod_{j in H} (z_j + t). The table stores
    F(H) = v prod_{P - H} z G(H), so a hot i gets (1 - z_i)/z_i F(H - i) and a cold i gets -F(H).
    """
    expected = 0.0
    poly = np.zeros(MAX_PATH_FEATURES + 1)
    weight = np.zeros(MAX_PATH_FEATURES + 1)
    for leaf in range(leaf_value.shape[0]):
        start, d = leaf_feature_start[leaf], leaf_feature_start[leaf + 1] - leaf_feature_start[leaf]
        z = zero_fraction[start:start + d]
        value = leaf_value[leaf]
        reach = 1.0
        for j in range(d):
            reach *= z[j]
        expected += value * reach
        if d == 0:
            continue
        for k in range(d):  # Shapley weights k!(d-k-1)!/d!
            w = 1.0 / d
            for m in range(1, k + 1):
                w *= m / (d - m)
            weight[k] = w
        for hot in range(1 << d):
            poly[:d + 1] = 0.0
            poly[0] = 1.0
            size = 0
            for j in range(d):  # multiply by (z_j + t) for each hot j
                if (hot >> j) & 1:
                    size += 1
                    for k in range(size, 0, -1):
                        poly[k] = poly[k] * z[j] + poly[k - 1]
                    poly[0] *= z[j]
            total = 0.0
            for k in range(min(size, d - 1) + 1):
                total += weight[k] * poly[k]
            cold_product = 1.0
            for j in range(d):
                if not (hot >> j) & 1:
                    cold_product *= z[j]
            tables[table_start[leaf] + hot] = value * cold_product * total
    return expected


@numba.njit(cache=True)
def _goes_left(x: float, threshold: float, missing: int, default_left: bool) -> bool:
    """LightGBM's numerical decision, missing values included."""
    if missing != MISSING_NAN and np.isnan(x):
        x = 0.0
    if (missing == MISSING_ZERO and abs(x) <= _ZERO_THRESHOLD) or (
            missing == MISSING_NAN and np.isnan(x)):
        return default_left
    return x <= threshold


@numba.njit(cache=True, nogil=True)  # other threads run meanwhile (a ScoreBatch, the gRPC poller)
def _explain_rows(matrix: np.ndarray, roots: np.ndarray, feature: np.ndarray,
                  threshold: np.ndarray, missing: np.ndarray, default_left: np.ndarray,
                  left: np.ndarray, right: np.ndarray, bit: np.ndarray,
                  leaf_features: np.ndarray, leaf_feature_start: np.ndarray,
                  hot_ratio: np.ndarray, table_start: np.ndarray, tables: np.ndarray,
                  out: np.ndarray) -> None:
    """Adds every leaf's share for each row's cold pattern into `out` (rows x features).

    Nodes are numbered in pre-order, so one forward sweep hands each child its cold pattern, and
    a second sweep reads the leaf tables in memory order.
    """
    node_mask = np.zeros(feature.shape[0], dtype=np.int64)
    leaf_mask = np.zeros(leaf_feature_start.shape[0] - 1, dtype=np.int64)
    for r in range(matrix.shape[0]):
        x = matrix[r]
        phi = out[r]
        for t in range(roots.shape[0]):
            if roots[t] >= 0:
                node_mask[roots[t]] = 0
        for node in range(feature.shape[0]):
            mask = node_mask[node]
            flag = np.int64(1) << bit[node]
            if _goes_left(x[feature[node]], threshold[node], missing[node], default_left[node]):
                left_mask, right_mask = mask, mask | flag
            else:
                left_mask, right_mask = mask | flag, mask
            child = left[node]
            if child >= 0:
                node_mask[child] = left_mask
            else:
                leaf_mask[~child] = left_mask
            child = right[node]
            if child >= 0:
                node_mask[child] = right_mask
            else:
                leaf_mask[~child] = right_mask
        for leaf in range(leaf_mask.shape[0]):
            start = leaf_feature_start[leaf]
            d = leaf_feature_start[leaf + 1] - start
            cold = leaf_mask[leaf]
            hot = ((np.int64(1) << d) - 1) ^ cold
            table = table_start[leaf]
            for k in range(d):
                # hot k: (1 - z_k)/z_k F(H - k); cold k: -F(H) (see _fill_tables)
                is_hot = (hot >> k) & 1
                share = tables[table + (hot ^ (is_hot << k))] * (is_hot * (hot_ratio[start + k] + 1.0) - 1.0)
                phi[leaf_features[start + k]] += share


@numba.njit(cache=True, nogil=True)
def _predict_rows(matrix: np.ndarray, roots: np.ndarray, feature: np.ndarray,
                  threshold: np.ndarray, missing: np.ndarray, default_left: np.ndarray,
                  left: np.ndarray, right: np.ndarray, leaf_value: np.ndarray,
                  out: np.ndarray) -> None:
    """Follows each row down every tree and sums the leaf values it reaches."""
    for r in range(matrix.shape[0]):
        x = matrix[r]
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                if _goes_left(x[feature[node]], threshold[node], missing[node], default_left[node]):
                    node = left[node]
                else:
                    node = right[node]
            total += leaf_value[~node]
        out[r] = total
