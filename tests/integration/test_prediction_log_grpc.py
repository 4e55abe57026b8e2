"""The prediction log behind a real server: request ids in the metadata, rows equal to the answers."""

import math
from pathlib import Path

import grpc
import pandas as pd

from effort.v1 import channel_pb2 as channel_pb
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.catalog import MODEL_FEATURES
from features.prediction_log_schema import REQUEST_ID, logged_feature_name, open_log
from service.server import create_server
from service.servicers import REQUEST_ID_KEY
from service.settings import Settings
from tests.helpers import DemoWorld

BATCH = [f"C{n:06d}" for n in range(1, 41)] + ["NOBODY42"]


def _row_matches(row: pd.Series, answer: spb.ScoreResponse) -> None:
    assert row["customer_id"] == answer.customer_id
    assert row["contact_id"] == answer.contact_id
    assert row["model_version"] == answer.model_version
    assert row["effort_score"] == answer.effort_score
    assert row["churn_risk"] == answer.churn_risk
    assert row["senior"] == (answer.tier == spb.TIER_SENIOR)
    assert row["customer_known"] == answer.customer_known
    assert row["degraded_reason"] == answer.degraded_reason
    assert list(row["reason_codes"]) == [reason.code for reason in answer.reasons]
    for name in MODEL_FEATURES:
        value = row[logged_feature_name(name)]
        if name in answer.features:
            assert value == answer.features[name], name
        else:  # a missing model input is left out of the answer and null in the log
            assert value is None or math.isnan(value), name


def test_answers_are_logged_with_their_request_ids(demo_world: DemoWorld, tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    running = create_server(Settings(grpc_host="127.0.0.1", grpc_port=0,
                                     feature_repo=demo_world.repo,
                                     models_dir=demo_world.models_dir, model_poll_seconds=0,
                                     prediction_log_dir=folder))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = sgrpc.ScoringServiceStub(channel)
            single, call = stub.Score.with_call(
                spb.ScoreRequest(customer_id="C000007", contact_id="K-7", include_features=True,
                                 channel=channel_pb.CHANNEL_CHAT, intent="billing"),
                metadata=((REQUEST_ID_KEY, "route-42:a@b"),), timeout=10)
            assert dict(call.trailing_metadata())[REQUEST_ID_KEY] == "route-42:a@b"
            batch, batch_call = stub.ScoreBatch.with_call(spb.ScoreBatchRequest(requests=[
                spb.ScoreRequest(customer_id=c, contact_id=f"K-{c}", include_features=True)
                for c in BATCH]), timeout=30)
            batch_id = dict(batch_call.trailing_metadata())[REQUEST_ID_KEY]
            _, replaced = stub.Score.with_call(spb.ScoreRequest(customer_id="C000008"),
                                               metadata=((REQUEST_ID_KEY, "no spaces"),),
                                               timeout=10)
            made = dict(replaced.trailing_metadata())[REQUEST_ID_KEY]
    finally:
        running.stop(grace=1.0)  # closes the log: what was queued is written

    assert len(batch_id) == 32 and made != "no spaces" and len(made) == 32
    frame = open_log(folder).to_table().to_pandas()
    assert len(frame) == 1 + len(BATCH) + 1
    assert {p.name for p in folder.iterdir()} == {
        f"__log_date={day}" for day in frame["__log_date"].astype(str)}
    first = frame[frame[REQUEST_ID] == "route-42:a@b"]
    assert len(first) == 1 and first.iloc[0]["batch_index"] == 0
    _row_matches(first.iloc[0], single)
    assert first.iloc[0][logged_feature_name("request_channel")] == channel_pb.CHANNEL_CHAT
    rows = frame[frame[REQUEST_ID] == batch_id].sort_values("batch_index")
    assert list(rows["batch_index"]) == list(range(len(BATCH)))
    assert sum(answer.customer_known for answer in batch.responses) > len(BATCH) // 2
    for (_, row), answer in zip(rows.iterrows(), batch.responses, strict=True):
        _row_matches(row, answer)
    assert list(frame[frame[REQUEST_ID] == made]["customer_id"]) == ["C000008"]


def test_a_share_of_zero_writes_nothing(demo_world: DemoWorld, tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    running = create_server(Settings(grpc_host="127.0.0.1", grpc_port=0,
                                     feature_repo=demo_world.repo,
                                     models_dir=demo_world.models_dir, model_poll_seconds=0,
                                     prediction_log_dir=folder, prediction_log_share=0.0))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            _, call = sgrpc.ScoringServiceStub(channel).Score.with_call(
                spb.ScoreRequest(customer_id="C000001"), timeout=10)
            assert len(dict(call.trailing_metadata())[REQUEST_ID_KEY]) == 32
    finally:
        running.stop(grace=1.0)
    assert not folder.exists()
