"""The shadow challenger: a second model scores a share of calls off the call path, beside the champion.

A sampled call, once answered, puts one record (its request id, the time and the champion's
ScoreResults, which hold the model input rows the champion built) on a queue bounded by rows; a
full queue drops the call and counts it, never waits. One daemon thread gathers the calls queued
over GATHER_SECONDS into one pass and sends their rows to the challenger's own process at idle CPU
priority (service/challenger_process.py), which scores them with the challenger's models and
routing (no feature read). The thread fills each ScoreResult's `challenger`, observes agreement,
differences and the challenger's time, and then submits the calls to the prediction log: each
answer reaches the log with its challenger scores, in one row. A pass the challenger process
fails is logged without challenger scores and counted.
"""

import logging
import queue
import threading
import time
from collections.abc import Sequence

import numpy as np

from service import metrics
from service.challenger_process import (
    ChallengerFailed,
    ChallengerPaused,
    ChallengerProcess,
    Scored,
)
from service.models import ModelBundle
from service.prediction_log import Call, CallQueue, PredictionLog, sampled
from service.routing import RoutingPolicy
from service.scorer import ChallengerScore, ScoreResult

log = logging.getLogger(__name__)

# Rows waiting for the challenger: some seconds of a process's peak traffic; beyond that calls are
# logged without challenger scores rather than held in memory.
QUEUE_ROWS = 20_000
CLOSE_SECONDS = 30.0
PASS_CALLS = 1024  # most calls scored in one pass
# A pass takes the calls queued over GATHER_SECONDS at once: one round trip to the challenger's
# process, one wake-up of the prediction log's writer. Pairing the answers and observing the
# metrics is done CHUNK_ROWS rows at a time, letting the interpreter lock go between chunks, so a
# Score waits for at most one chunk.
GATHER_SECONDS = 0.2
CHUNK_ROWS = 32


class ShadowScorer:
    """Scores the answers of a share of calls again with a challenger bundle, in one thread."""

    def __init__(self, policy: RoutingPolicy | None = None, share: float = 1.0,
                 prediction_log: PredictionLog | None = None, *, queue_rows: int = QUEUE_ROWS,
                 start: bool = True, process: ChallengerProcess | None = None) -> None:
        self.share = share
        self._log = prediction_log
        self._challenger: ModelBundle | None = None
        self.process = process or ChallengerProcess(policy or RoutingPolicy())
        self._queue = CallQueue(queue_rows)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shadow-challenger", daemon=True)
        if start:
            self._thread.start()

    @property
    def bundle(self) -> ModelBundle | None:
        """The challenger in use (verified in this process), None while there is none."""
        return self._challenger

    def set_bundle(self, bundle: ModelBundle | None) -> None:
        """Scores with `bundle` (its folder, loaded again by the challenger's process) from the
        next pass on; None stops shadowing."""
        previous, self._challenger = self._challenger, bundle
        if previous is not None:
            metrics.SHADOW_INFO.labels(version=previous.version).set(0)
        if bundle is not None:
            metrics.SHADOW_INFO.labels(version=bundle.version).set(1)

    def offer(self, request_id: str, results: Sequence[ScoreResult]) -> bool:
        """Queues an answered call for the challenger when one is loaded and the call is sampled;
        never blocks. True means the call's answers go to the prediction log from here; False
        that the caller logs them itself (no challenger, not sampled, queue full or closed)."""
        if (self._challenger is None or self._closed or not results
                or not sampled(request_id, self.share)):
            return False
        try:
            self._queue.put_nowait([Call(request_id, time.time_ns() // 1000, results)])
        except queue.Full:
            metrics.SHADOW_DROPPED.inc()
            return False
        return True

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Scores what is queued, hands it to the prediction log and stops the thread; call it
        once calls have finished and before the prediction log closes."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.error("shadow challenger: the queue did not empty within %.0f s", timeout)
            return
        self._thread.join(timeout)  # the thread stops the challenger's process as it ends

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            if items[-1] is not None:
                time.sleep(GATHER_SECONDS)  # one wake-up per pass, not one per call
            while items[-1] is not None and len(items) < PASS_CALLS:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            answered = [call for item in items if item is not None for call in item]
            try:
                self.score([call.results for call in answered])
            except ChallengerPaused:
                metrics.SHADOW_FAILURES.inc()  # logged once, when the process failed
            except ChallengerFailed as error:
                metrics.SHADOW_FAILURES.inc()
                log.error("shadow challenger process failed: %s; %d calls' answers are logged "
                          "without challenger scores", error, len(answered))
            except Exception:  # a challenger fault must never lose the champion's answers
                log.exception("shadow challenger failed; %d calls' answers are logged without "
                              "challenger scores", len(answered))
            if self._log is not None:
                self._log.submit_calls(answered)  # one hand-over: the writer wakes once
            if items[-1] is None:
                self.process.close()
                return

    def score(self, calls: Sequence[Sequence[ScoreResult]]) -> None:
        """Fills `challenger` of every modelled answer of the calls (not those from priors) with
        one round trip to the challenger's process and observes the shadow metrics, its time
        shared among the calls by rows; does nothing without a challenger. Raises
        ChallengerFailed when the process cannot score them."""
        bundle = self._challenger
        modelled = [r for results in calls for r in results if r.model_input is not None]
        if bundle is None or not modelled:
            return
        matrix = np.vstack([r.model_input for r in modelled if r.model_input is not None])
        scored = self.process.score(bundle.folder, bundle.version, matrix)
        for first in range(0, len(modelled), CHUNK_ROWS):
            if first:
                time.sleep(0)  # the serving loop may take the interpreter lock here
            _pair_chunk(bundle.version, modelled[first:first + CHUNK_ROWS], scored, first)
        per_row = scored.seconds / len(modelled)
        for number, results in enumerate(calls, start=1):
            rows = sum(r.model_input is not None for r in results)
            if rows:
                metrics.SHADOW_SECONDS.observe(per_row * rows)
            if number % CHUNK_ROWS == 0:
                time.sleep(0)


def _pair_chunk(version: str, chunk: Sequence[ScoreResult], scored: Scored, first: int) -> None:
    """Pairs some modelled answers with the challenger's scores of the same rows (from row
    `first` of the pass) and observes the differences and the tier agreement."""
    end = first + len(chunk)
    same = 0
    for result, effort_score, churn_risk, senior in zip(
            chunk, scored.effort[first:end].tolist(), scored.churn[first:end].tolist(),
            scored.seniors[first:end].tolist(), strict=True):
        result.challenger = ChallengerScore(version, effort_score, churn_risk, senior)
        same += senior == result.senior
        metrics.SHADOW_CHURN_RISK_DIFFERENCE.observe(abs(churn_risk - result.churn_risk))
        metrics.SHADOW_EFFORT_SCORE_DIFFERENCE.observe(abs(effort_score - result.effort_score))
    metrics.SHADOW_TIER_AGREEMENT.labels(agreement="same").inc(same)
    metrics.SHADOW_TIER_AGREEMENT.labels(agreement="different").inc(len(chunk) - same)
