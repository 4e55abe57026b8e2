"""The shadow challenger's own process: the same scores and tiers as in the server's process, idle
CPU priority, and a killed, hung or refused child failing one pass and starting again."""

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from features.catalog import MODEL_FEATURES
from service.challenger_process import ChallengerFailed, ChallengerPaused, ChallengerProcess
from service.reloader import load_served
from service.routing import Router, RoutingPolicy
from tests.helpers import DemoWorld, process_alive

POLICY = RoutingPolicy(value_at_risk_senior=500.0)


@pytest.fixture
def folder(demo_world: DemoWorld, tmp_path: Path) -> Path:
    copy = tmp_path / "models" / demo_world.version
    shutil.copytree(demo_world.models_dir / demo_world.version, copy)
    return copy


def _rows(count: int) -> np.ndarray:
    rows = np.random.default_rng(3).uniform(0, 5, size=(count, len(MODEL_FEATURES)))
    rows[::7, 3] = np.nan  # missing values travel as they are
    return rows


def test_the_child_scores_as_the_server_would_at_idle_priority(folder: Path) -> None:
    bundle = load_served(folder.parent, folder.name, MODEL_FEATURES, POLICY, 5)
    rows = _rows(300)
    process = ChallengerProcess(POLICY)
    try:
        scored = process.score(folder, bundle.version, rows)
        effort, churn = bundle.predict(rows)
        np.testing.assert_array_equal(scored.effort, effort)
        np.testing.assert_array_equal(scored.churn, churn)
        np.testing.assert_array_equal(scored.seniors,
                                      Router(POLICY, bundle).seniors(rows, effort, churn))
        assert scored.seniors.any() and not scored.seniors.all()
        assert 0 < scored.seconds < 5
        pid = process.pid
        assert pid is not None
        assert (os.sched_getscheduler(pid) == os.SCHED_IDLE
                or os.getpriority(os.PRIO_PROCESS, pid) == 19)
        assert process.score(folder, bundle.version, rows[:1]).effort[0] == effort[0]
        assert process.pid == pid  # loaded once, kept
    finally:
        process.close()
    assert not process_alive(pid)


def test_a_killed_child_fails_one_pass_and_a_new_one_starts(folder: Path) -> None:
    version = folder.name
    process = ChallengerProcess(POLICY, retry_seconds=0.5)
    try:
        process.score(folder, version, _rows(5))
        first = process.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ChallengerFailed, match="ended"):
            process.score(folder, version, _rows(5))
        with pytest.raises(ChallengerPaused, match="less than"):  # no restart storm
            process.score(folder, version, _rows(5))
        time.sleep(0.6)
        assert len(process.score(folder, version, _rows(5)).churn) == 5
        assert process.pid not in (None, first)
    finally:
        process.close()


def test_a_hung_child_is_stopped_within_its_timeout(folder: Path) -> None:
    version = folder.name
    process = ChallengerProcess(POLICY, timeout=1.0, retry_seconds=0)
    try:
        process.score(folder, version, _rows(5))
        hung = process.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ChallengerFailed, match="did not answer within 1 s"):
            process.score(folder, version, _rows(5))
        assert time.monotonic() - started < 5
        assert not process_alive(hung)
        process.score(folder, version, _rows(5))
        hung = process.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)
        started = time.monotonic()  # a pass larger than the socket's buffer: the send times out
        with pytest.raises(ChallengerFailed, match="did not take the pass within 1 s"):
            process.score(folder, version, _rows(20_000))
        assert time.monotonic() - started < 8
        assert not process_alive(hung)
        assert len(process.score(folder, version, _rows(5)).effort) == 5
    finally:
        process.close()


def test_a_folder_the_child_cannot_verify_fails_the_pass(folder: Path) -> None:
    version = folder.name
    (folder / "churn.lgb.txt").write_text("changed after the server verified it")
    process = ChallengerProcess(POLICY)
    try:
        with pytest.raises(ChallengerFailed, match=f"loading {version}"):
            process.score(folder, version, _rows(5))
        assert process.pid is None
    finally:
        process.close()
