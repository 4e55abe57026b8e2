"""The compiled TreeSHAP explainer and model-file reader against LightGBM on small toy models."""

import math
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from service.model_file import ModelFileError, read_model_file
from service.tree_shap import TreeExplainer


@pytest.mark.parametrize("params", [{"zero_as_missing": True}, {"use_missing": False},
                                    {"use_missing": True}])
def test_missing_value_rules_match_lightgbm(params: dict[str, bool]) -> None:
    """NaN and zero handling of every missing_type LightGBM writes, on a model with repeated
    features along paths and NaN and zeros in training and scoring data."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 5))
    x[rng.random(x.shape) < 0.15] = math.nan
    x[rng.random(x.shape) < 0.15] = 0.0
    y = np.nan_to_num(x[:, 0]) * 2 + np.sin(np.nan_to_num(x[:, 1])) + np.isnan(x[:, 2]) \
        + rng.normal(scale=0.1, size=3000)
    booster = lgb.train({"objective": "regression", "num_leaves": 63, "verbose": -1,
                         "min_data_in_leaf": 5, **params}, lgb.Dataset(x, y), num_boost_round=40)
    explainer = TreeExplainer.from_booster(booster)
    raw, contributions = explainer.explain(x[:500])
    np.testing.assert_allclose(contributions, booster.predict(x[:500], pred_contrib=True), atol=1e-9)
    np.testing.assert_allclose(raw, booster.predict(x[:500]), atol=1e-9)
    np.testing.assert_allclose(explainer.predict_raw(x[:500]), booster.predict(x[:500]), atol=1e-9)


def test_model_file_reads_like_lightgbm_dump(tmp_path: Path) -> None:
    """The text parser gives the same trees as LightGBM's own dump, single-leaf trees included."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 4))
    x[rng.random(x.shape) < 0.2] = math.nan
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1,
                         "min_data_in_leaf": 3, "zero_as_missing": True},
                        lgb.Dataset(x, (x[:, 0] > 0).astype(float)), num_boost_round=25)
    booster.save_model(tmp_path / "m.txt")
    parsed = read_model_file(tmp_path / "m.txt")
    dump = booster.dump_model()
    assert parsed.objective == dump["objective"] and len(parsed.tree_info) == booster.num_trees()
    ours = TreeExplainer(parsed).explain(x)[1]
    np.testing.assert_allclose(ours, booster.predict(x, pred_contrib=True), atol=1e-9)


def test_model_file_refuses_categorical_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.integers(0, 8, 500), rng.normal(size=500)])
    booster = lgb.train({"objective": "regression", "verbose": -1, "min_data_in_leaf": 5,
                         "min_data_per_group": 5, "cat_smooth": 1},
                        lgb.Dataset(x, x[:, 0] % 3 + x[:, 1], categorical_feature=[0]),
                        num_boost_round=5)
    booster.save_model(tmp_path / "cat.txt")
    with pytest.raises(ModelFileError, match="categorical"):
        read_model_file(tmp_path / "cat.txt")


def test_rejects_rows_of_the_wrong_width() -> None:
    booster = lgb.train({"objective": "regression", "verbose": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(np.arange(40.0).reshape(20, 2), np.arange(20.0)),
                        num_boost_round=3)
    with pytest.raises(ValueError, match="features"):
        TreeExplainer.from_booster(booster).explain(np.zeros((2, 3)))
