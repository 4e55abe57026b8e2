"""Training on a Dask cluster with lightgbm.dask (`effort train --engine dask`).

The hyperparameters and rounds come from the local cross-validation (training/tuning.py); the
final fit on all training rows runs across the cluster's workers.
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
                y: np.ndarray, rounds: int) -> lgb.Booster:
    """Trains `rounds` trees across the cluster and returns them as a local Booster."""
    workers = max(1, len(client.scheduler_info()["workers"]))
    partitions = max(workers, math.ceil(len(x) / 250_000))
    params = dict(params)
    params.pop("num_threads", None)  # each worker uses its own threads
    objective = params.pop("objective")
    estimator = (lgb.DaskLGBMRegressor if objective == "regression"
                 else lgb.DaskLGBMClassifier)(client=client, objective=objective,
                                              n_estimators=rounds, **params)
    estimator.fit(_frame(x, names, partitions),
                  dd.from_array(y, chunksize=math.ceil(len(y) / partitions)))
    return lgb.Booster(model_str=estimator.booster_.model_to_string())
