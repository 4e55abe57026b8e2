"""The shadow challenger behind a real server: SHADOW set while serving pairs the logged answers of
Score and ScoreBatch with challenger scores and moves the shadow metrics; --off stops it."""

import shutil
from pathlib import Path

import grpc
from prometheus_client import REGISTRY

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.prediction_log_schema import REQUEST_ID, open_log
from service.server import create_server
from service.servicers import REQUEST_ID_KEY
from service.settings import Settings
from tests.helpers import DemoWorld, wait_until
from tests.integration.test_shadow import challenger_copy
from training.registry import promote, shadow, shadow_off

BATCH = [f"C{n:06d}" for n in range(1, 21)]


def _shadow_info(version: str) -> float:
    return REGISTRY.get_sample_value("effort_shadow_info", {"version": version}) or 0.0


def _paired() -> float:
    return sum(REGISTRY.get_sample_value("effort_shadow_tier_agreement_total",
                                         {"agreement": a}) or 0.0 for a in ("same", "different"))


def test_a_shadow_set_while_serving_pairs_the_logged_answers(demo_world: DemoWorld,
                                                             tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    shutil.copytree(demo_world.models_dir, models_dir)
    promote(models_dir, demo_world.version)
    challenger_copy(models_dir, demo_world.version, "challenger-2")
    folder = tmp_path / "predictions"
    running = create_server(Settings(grpc_host="127.0.0.1", grpc_port=0,
                                     feature_repo=demo_world.repo, models_dir=models_dir,
                                     model_poll_seconds=0.1, prediction_log_dir=folder))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = sgrpc.ScoringServiceStub(channel)

            def score(rid: str) -> None:
                stub.Score(spb.ScoreRequest(customer_id="C000007"),
                           metadata=((REQUEST_ID_KEY, rid),), timeout=10)

            score("before")
            paired = _paired()
            shadow(models_dir, "challenger-2")
            wait_until(lambda: _shadow_info("challenger-2") == 1, 15, "the challenger to load")
            score("shadowed")
            stub.ScoreBatch(spb.ScoreBatchRequest(requests=[
                spb.ScoreRequest(customer_id=c) for c in BATCH]),
                metadata=((REQUEST_ID_KEY, "shadowed-batch"),), timeout=30)
            wait_until(lambda: _paired() >= paired + 1 + len(BATCH), 15,
                       "the challenger to score both calls")
            seconds = REGISTRY.get_sample_value("effort_shadow_seconds_count") or 0.0
            assert seconds >= 2
            shadow_off(models_dir)
            wait_until(lambda: _shadow_info("challenger-2") == 0, 15, "the challenger to go")
            score("after")
    finally:
        running.stop(grace=1.0)

    frame = open_log(folder).to_table().to_pandas()
    by_call = {rid: rows for rid, rows in frame.groupby(REQUEST_ID)}
    assert set(by_call) == {"before", "shadowed", "shadowed-batch", "after"}
    for rid in ("shadowed", "shadowed-batch"):
        rows = by_call[rid]
        assert (rows["challenger_model_version"] == "challenger-2").all(), rid
        assert rows["challenger_senior"].all()  # the copy sends every contact senior
        assert (rows["challenger_churn_risk"] - rows["churn_risk"]).abs().max() < 1e-9
    assert len(by_call["shadowed-batch"]) == len(BATCH)
    for rid in ("before", "after"):
        assert by_call[rid]["challenger_model_version"].isna().all(), rid
