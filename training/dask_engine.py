"""Training on a Dask cluster with lightgbm.dask (`effort train --engine dask`).

lightgbm.dask has no early stopping, so it boosts the full number of rounds while recording the
early-stopping rows' metric, then keeps the trees up to the best round: the same model choice
as local early stopping, made after the fact.
"""

import math
from collections.abc import Sequence
from typing import Any

import dask.dataframe as dd
import lightgbm as lgb
import numpy as np
import pandas as pd
from dask.distributed import Client, LocalCluster


def local_client(workers: int = 2) -> Client:
    """A Dask cluster of `workers` single-threaded processes on this machine."""
    return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None))


def _frame(x: np.ndarray, names: Sequence[str], partitions: int) -> dd.DataFrame:
    return dd.from_pandas(pd.DataFrame(x, columns=list(names)), npartitions=partitions)


def fit_on_dask(client: Client, params: dict[str, Any], names: Sequence[str], x: np.ndarray,
                y: np.ndarray, x_stop: np.ndarray, y_stop: np.ndarray,
                rounds: int) -> lgb.Booster:
    """Trains across the cluster and returns a local Booster cut at the best round."""
    workers = max(1, len(client.scheduler_info()["workers"]))
    partitions = max(workers, math.ceil(len(x) / 250_000))
    params = dict(params)
    params.pop("num_threads", None)  # each worker uses its own threads
    objective = params.pop("objective")
    metric = params.pop("metric", "l2" if objective == "regression" else "binary_logloss")
    estimator = (lgb.DaskLGBMRegressor if objective == "regression"
                 else lgb.DaskLGBMClassifier)(client=client, objective=objective,
                                              n_estimators=rounds, metric=metric, **params)
    estimator.fit(_frame(x, names, partitions), dd.from_array(y, chunksize=math.ceil(len(y) / partitions)),
                  eval_set=[(_frame(x_stop, names, workers),
                             dd.from_array(y_stop, chunksize=math.ceil(len(y_stop) / workers)))])
    history = next(iter(estimator.evals_result_.values()))[metric]
    best = int(np.argmax(history) if metric == "auc" else np.argmin(history)) + 1
    booster = estimator.booster_
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
