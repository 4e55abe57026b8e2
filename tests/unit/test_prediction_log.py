"""The prediction log: day partitions, Feast's column names, drops when full, sampling, request ids."""

import logging
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from feast import feature_logging
from prometheus_client import REGISTRY

from features.catalog import FEATURE_NAMES, FEATURE_VIEW_NAME, MODEL_FEATURES, REQUEST_FEATURE_NAMES
from features.prediction_log_schema import (
    BATCH_INDEX,
    FEATURE_COLUMNS,
    LOG_DATE,
    LOG_TIMESTAMP,
    REQUEST_ID,
    SCHEMA,
    open_log,
)
from service.prediction_log import Call, PredictionLog, log_table, pieces, sampled
from service.reasons import Reason, ScoreKind
from service.scorer import ScoreResult
from service.servicers import REQUEST_ID_KEY, request_id
from service.settings import Settings
from tests.helpers import wait_until

DAY_1 = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
DAY_2 = datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC)


def _result(customer: str, *, degraded: str = "", nan_at: int | None = None) -> ScoreResult:
    """A modelled answer whose model input is 0, 1, 2, ... (NaN at `nan_at`), or a prior."""
    vector = np.arange(len(MODEL_FEATURES), dtype=np.float64)
    if nan_at is not None:
        vector[nan_at] = np.nan
    return ScoreResult(
        customer_id=customer, contact_id=f"K-{customer}", effort_score=61.5, churn_risk=0.25,
        senior=not degraded, model_version="v1", churn_horizon_days=90,
        customer_known=not degraded,
        reasons=[] if degraded else [
            Reason("REPEAT_CONTACTS", "contacts_7d", "3 contacts", 0.4, ScoreKind.EFFORT),
            Reason("TRANSFERS", "transfers_7d", "2 transfers", 0.2, ScoreKind.CHURN)],
        degraded_reason=degraded, model_input=None if degraded else vector)


def _clock(moment: list[datetime]) -> Any:
    return lambda: int(moment[0].timestamp() * 1e9)


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("effort_prediction_log_dropped_total",
                                     {"reason": reason}) or 0.0


def _written() -> float:
    return REGISTRY.get_sample_value("effort_prediction_log_rows_total") or 0.0


def _read(folder: Path) -> pd.DataFrame:
    return open_log(folder).to_table().to_pandas().sort_values(
        [REQUEST_ID, "batch_index"]).reset_index(drop=True)


def test_rows_land_in_their_days_folders_with_feasts_column_names(tmp_path: Path) -> None:
    moment = [DAY_1]
    log = PredictionLog(tmp_path, clock=_clock(moment))
    log.submit("req-1", [_result("C1")])
    moment[0] = DAY_2
    log.submit("req-2", [_result("C2", nan_at=3), _result("C3", degraded="feature store "
                                                                    "unavailable: timeout")])
    log.close()

    days = sorted(p.name for p in tmp_path.iterdir())
    assert days == ["__log_date=2026-03-01", "__log_date=2026-03-02"]
    for day in tmp_path.iterdir():
        files = list(day.iterdir())
        assert len(files) == 1 and files[0].name.startswith("part-")
        assert files[0].suffix == ".parquet"
    frame = _read(tmp_path)
    assert list(frame.columns) == SCHEMA.names
    assert list(frame["customer_id"]) == ["C1", "C2", "C3"]
    assert list(frame["contact_id"]) == ["K-C1", "K-C2", "K-C3"]
    assert list(frame["batch_index"]) == [0, 0, 1]
    assert list(frame[REQUEST_ID]) == ["req-1", "req-2", "req-2"]
    assert list(frame[LOG_DATE]) == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 2)]
    assert list(frame[LOG_TIMESTAMP]) == [pd.Timestamp(DAY_1), pd.Timestamp(DAY_2),
                                          pd.Timestamp(DAY_2)]
    assert [list(codes) for codes in frame["reason_codes"]] == [
        ["REPEAT_CONTACTS", "TRANSFERS"], ["REPEAT_CONTACTS", "TRANSFERS"], []]
    assert list(frame["degraded_reason"]) == ["", "", "feature store unavailable: timeout"]
    assert list(frame["senior"]) == [True, True, False]
    assert list(frame["customer_known"]) == [True, True, False]
    assert list(frame["effort_score"]) == [61.5] * 3 and list(frame["churn_risk"]) == [0.25] * 3
    assert frame[["challenger_model_version", "challenger_effort_score",
                  "challenger_churn_risk", "challenger_senior"]].isna().all().all()
    features = frame[list(FEATURE_COLUMNS)]
    assert list(features.iloc[0]) == list(range(len(MODEL_FEATURES)))
    assert features.iloc[1].isna().tolist() == [k == 3 for k in range(len(MODEL_FEATURES))]
    assert features.iloc[2].isna().all()  # an answer from priors saw no model input


def test_columns_follow_feasts_feature_logging_schema() -> None:
    # Feast: "<feature view>__<feature>" for a view's feature, the plain name for a request one.
    feast_names = (*(f"{FEATURE_VIEW_NAME}__{name}" for name in FEATURE_NAMES),
                   *REQUEST_FEATURE_NAMES)
    assert feast_names == FEATURE_COLUMNS
    assert (REQUEST_ID, LOG_TIMESTAMP, LOG_DATE) == (
        feature_logging.REQUEST_ID_FIELD, feature_logging.LOG_TIMESTAMP_FIELD,
        feature_logging.LOG_DATE_FIELD)
    assert SCHEMA.names[-3:] == [LOG_TIMESTAMP, LOG_DATE, REQUEST_ID]  # Feast's order
    assert SCHEMA.field(LOG_TIMESTAMP).type == pa.timestamp("us", tz="UTC")
    assert SCHEMA.field(LOG_DATE).type == pa.date32()
    assert SCHEMA.field("reason_codes").type == pa.list_(pa.string())
    assert all(SCHEMA.field(name).type == pa.float64() and SCHEMA.field(name).nullable
               for name in FEATURE_COLUMNS)


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, queue_rows=10, start=False)  # nothing drains the queue
    dropped, written = _dropped("queue_full"), _written()
    for n in range(10):
        log.submit(f"r{n}", [_result(f"C{n}")])
    started = time.perf_counter()
    log.submit("one-more", [_result("C10")])
    log.submit("a-batch", [_result(f"B{n}") for n in range(5)])
    assert time.perf_counter() - started < 0.05
    assert _dropped("queue_full") == dropped + 6
    log.close()  # writes what was queued
    assert _written() == written + 10
    assert sorted(_read(tmp_path)["customer_id"]) == sorted(f"C{n}" for n in range(10))
    log.submit("after-close", [_result("C11")])
    assert _dropped("queue_full") == dropped + 7


def test_calls_handed_over_together_are_written_sampled_or_dropped_together(
        tmp_path: Path) -> None:
    """submit_calls (the shadow's pass): each call keeps its own request id and time, sampling
    is per call, and a full queue drops the whole hand-over, counted by rows."""
    at = int(DAY_1.timestamp() * 1e6)
    calls = [Call(f"h{n}", at + n, [_result(f"H{n}"), _result(f"I{n}")]) for n in range(4)]
    log = PredictionLog(tmp_path / "all", start=False)
    log.submit_calls(calls)
    log.close()
    table = _read(tmp_path / "all")
    assert sorted(table[REQUEST_ID].unique()) == ["h0", "h1", "h2", "h3"]
    assert len(table) == 8

    half = PredictionLog(tmp_path / "half", share=0.5, start=False)
    many = [Call(f"s{n}", at, [_result("S")]) for n in range(200)]
    half.submit_calls(many)
    half.close()
    kept = set(_read(tmp_path / "half")[REQUEST_ID])
    assert kept == {call.request_id for call in many if sampled(call.request_id, 0.5)}

    full = PredictionLog(tmp_path / "full", queue_rows=3, start=False)
    dropped = _dropped("queue_full")
    full.submit_calls(calls[:2])  # 4 rows, taken whole while the queue was not full
    full.submit_calls(calls[2:])  # the queue is full: both calls' 4 rows dropped
    assert _dropped("queue_full") == dropped + 4
    full.close()
    assert sorted(_read(tmp_path / "full")["customer_id"]) == ["H0", "H1", "I0", "I1"]


def test_a_batch_larger_than_the_room_left_is_taken_whole_while_the_queue_is_not_full(
        tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, queue_rows=10, start=False)
    log.submit("big", [_result(f"C{n}") for n in range(25)])
    log.submit("next", [_result("X")])
    log.close()
    assert len(_read(tmp_path)) == 25


def test_files_are_written_every_n_rows_and_every_t_seconds(tmp_path: Path) -> None:
    by_rows = PredictionLog(tmp_path / "rows", flush_rows=3, flush_seconds=3600)
    by_rows.submit("a", [_result("C1"), _result("C2")])
    by_rows.submit("b", [_result("C3")])
    wait_until(lambda: len(list((tmp_path / "rows").rglob("part-*.parquet"))) == 1, 10,
               "a file after 3 rows")
    by_rows.close()
    by_time = PredictionLog(tmp_path / "time", flush_rows=1000, flush_seconds=0.05)
    by_time.submit("c", [_result("C4")])
    wait_until(lambda: len(list((tmp_path / "time").rglob("part-*.parquet"))) == 1, 10,
               "a file after 0.05 s")
    by_time.close()
    assert list(_read(tmp_path / "time")["customer_id"]) == ["C4"]


def test_several_writers_share_a_folder(tmp_path: Path) -> None:
    writers = [PredictionLog(tmp_path, flush_rows=1) for _ in range(3)]
    for w, log in enumerate(writers):
        for n in range(4):
            log.submit(f"w{w}-{n}", [_result(f"C{w}{n}")])
    for log in writers:
        log.close()
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert len(names) == len(set(names)) == 12 and all(n.startswith("part-") for n in names)
    assert len(_read(tmp_path)) == 12


def test_sampling_share_keeps_batches_whole(tmp_path: Path) -> None:
    ids = [uuid.uuid4().hex for _ in range(600)]
    for share, folder in ((0.0, "none"), (1.0, "all"), (0.5, "half")):
        log = PredictionLog(tmp_path / folder, share)
        for rid in ids:
            log.submit(rid, [_result("C1"), _result("C2"), _result("C3")])
        log.close()
    assert not (tmp_path / "none").exists()
    assert len(_read(tmp_path / "all")) == 1800
    half = _read(tmp_path / "half")
    per_call = half.groupby(REQUEST_ID).size()
    assert set(per_call) == {3}
    assert 0.4 < len(per_call) / len(ids) < 0.6
    assert set(per_call.index) == {rid for rid in ids if sampled(rid, 0.5)}


def test_sampling_is_a_stable_function_of_the_request_id() -> None:
    ids = [f"req-{n}" for n in range(2000)]
    assert all(sampled(rid, 1.0) for rid in ids) and not any(sampled(rid, 0.0) for rid in ids)
    quarter = {rid for rid in ids if sampled(rid, 0.25)}
    assert quarter <= {rid for rid in ids if sampled(rid, 0.5)}  # a larger share adds calls
    assert 0.2 < len(quarter) / len(ids) < 0.3


def test_a_write_error_is_counted_and_logged_once_never_raised(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log's folder should be")
    log = PredictionLog(blocked, flush_rows=1)
    dropped = _dropped("write_error")
    with caplog.at_level(logging.ERROR, logger="service.prediction_log"):
        for n in range(3):
            log.submit(f"r{n}", [_result(f"C{n}")])
        wait_until(lambda: _dropped("write_error") == dropped + 3, 10, "3 failed rows")
        log.close()
    lines = [r for r in caplog.records if r.name == "service.prediction_log"]
    assert len(lines) == 1 and "dropped" in lines[0].getMessage()


def test_pandas_and_pyarrow_read_the_folder_but_not_files_being_written(tmp_path: Path) -> None:
    moment = [DAY_1]
    log = PredictionLog(tmp_path, clock=_clock(moment))
    log.submit("r1", [_result("C1")])
    moment[0] = DAY_2
    log.submit("r2", [_result("C2")])
    log.close()
    (tmp_path / "__log_date=2026-03-02" / ".part-0-0-000001.parquet.tmp").write_bytes(b"PAR1")
    frame = pd.read_parquet(tmp_path, partitioning=None, ignore_prefixes=["."])  # as README
    assert sorted(frame["customer_id"]) == ["C1", "C2"]
    assert list(frame[LOG_DATE]) == [date(2026, 3, 1), date(2026, 3, 2)]
    one_day = open_log(tmp_path).to_table(filter=ds.field(LOG_DATE) == date(2026, 3, 2))
    assert one_day.column("customer_id").to_pylist() == ["C2"]
    assert list(pd.read_parquet(tmp_path / "__log_date=2026-03-01")["customer_id"]) == ["C1"]


class _Context:
    def __init__(self, *metadata: tuple[str, str]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


@pytest.mark.parametrize("given", ["abc-123", "a" * 128, "req_1.2:3@host-x"])
def test_a_valid_request_id_is_kept(given: str) -> None:
    assert request_id(_Context(("authorization", "Bearer t"), (REQUEST_ID_KEY, given))) == given


@pytest.mark.parametrize("given", ["", "a" * 129, "has space", "semi;colon", "é"])
def test_an_invalid_or_missing_request_id_is_replaced(given: str) -> None:
    made = request_id(_Context((REQUEST_ID_KEY, given)))
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert request_id(_Context()) != request_id(_Context())


def test_settings_turn_the_log_off_with_an_empty_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EFFORT_PREDICTION_LOG_DIR", raising=False)
    monkeypatch.delenv("EFFORT_PREDICTION_LOG_SHARE", raising=False)
    default = Settings(_env_file=None)
    assert default.prediction_log_dir == Path("var/predictions")
    assert default.prediction_log_share == 1.0
    monkeypatch.setenv("EFFORT_PREDICTION_LOG_DIR", "")
    monkeypatch.setenv("EFFORT_PREDICTION_LOG_SHARE", "0.1")
    off = Settings(_env_file=None)
    assert off.prediction_log_dir is None and off.prediction_log_share == 0.1
    monkeypatch.setenv("EFFORT_PREDICTION_LOG_SHARE", "1.5")
    with pytest.raises(ValueError, match="prediction_log_share"):
        Settings(_env_file=None)


def test_a_file_built_in_pieces_equals_the_file_built_whole() -> None:
    """The writer cuts calls into pieces (a 10-answer batch across two); batch indexes and
    order survive."""
    batch = Call("batch", 1_700_000_000_000_000, [_result(f"C{n:06d}") for n in range(10)])
    single = Call("one", 1_700_000_000_000_001, [_result("C999999")])
    groups = pieces([single, batch], 4)
    assert [sum(len(call.results) for call in group) for group in groups] == [4, 4, 3]
    whole = log_table([single, batch])
    built = pa.concat_tables([log_table(group) for group in groups])
    assert built.equals(whole)
    assert built.column(BATCH_INDEX).to_pylist() == [0, *range(10)]
