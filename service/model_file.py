"""Reads LightGBM's text model files into plain trees without importing LightGBM.

The server only walks the trees (service/tree_shap.py). Importing LightGBM would also import
scikit-learn and SciPy, about 70 MB more per worker process. The trees come out in the layout of
LightGBM's `dump_model()["tree_info"]`; tests/unit/test_tree_shap.py checks the parse against
LightGBM.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MISSING_TYPES = ("None", "Zero", "NaN")


class ModelFileError(ValueError):
    """A model file this reader cannot represent exactly."""


@dataclass(frozen=True)
class ModelFile:
    """What serving needs from a LightGBM model file."""

    feature_names: tuple[str, ...]
    objective: str
    tree_info: list[dict[str, Any]]


def read_model_file(path: Path) -> ModelFile:
    """Parses a model saved by `Booster.save_model`; raises ModelFileError on what it cannot do."""
    header, *tree_blocks = path.read_text().split("\nTree=")
    settings = _key_values(header)
    if "average_output" in header.split("\n"):
        raise ModelFileError(f"{path}: random-forest models (average_output) are not supported")
    if settings.get("num_class", "1") != "1":
        raise ModelFileError(f"{path}: multiclass models are not supported")
    tree_blocks[-1] = tree_blocks[-1].split("\nend of trees")[0]
    return ModelFile(feature_names=tuple(settings["feature_names"].split()),
                     objective=settings["objective"],
                     tree_info=[{"tree_structure": _tree(_key_values(block), path)}
                                for block in tree_blocks])


def _key_values(block: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in block.split("\n") if "=" in line)


def _tree(fields: dict[str, str], path: Path) -> dict[str, Any]:
    """One tree as nested nodes; children >= 0 are internal nodes, < 0 are leaf ~child."""
    def numbers(key: str, kind: type = float) -> list[Any]:
        return [kind(v) for v in fields.get(key, "").split()]

    if fields.get("is_linear", "0") != "0" or fields.get("num_cat", "0") != "0":
        raise ModelFileError(f"{path}: linear trees and categorical splits are not supported")
    leaf_value, leaf_count = numbers("leaf_value"), numbers("leaf_count", int)
    if int(fields["num_leaves"]) == 1:
        return {"leaf_index": 0, "leaf_value": leaf_value[0],
                "leaf_count": leaf_count[0] if leaf_count else 0}
    feature, threshold = numbers("split_feature", int), numbers("threshold")
    decision, count = numbers("decision_type", int), numbers("internal_count", int)
    left, right = numbers("left_child", int), numbers("right_child", int)

    def node(index: int) -> dict[str, Any]:
        if index < 0:
            leaf = ~index
            return {"leaf_index": leaf, "leaf_value": leaf_value[leaf],
                    "leaf_count": leaf_count[leaf]}
        return {"split_feature": feature[index], "threshold": threshold[index],
                "decision_type": "<=", "default_left": bool(decision[index] & 2),
                "missing_type": _MISSING_TYPES[(decision[index] >> 2) & 3],
                "internal_count": count[index],
                "left_child": node(left[index]), "right_child": node(right[index])}

    return node(0)
