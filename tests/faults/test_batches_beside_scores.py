"""Large ScoreBatch calls beside Score calls: Scores keep answering, and a batch whose deadline is
too short for all its customers answers inside it, the rest flagged degraded."""

import threading

import grpc

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from tests.faults.served import ScoreLoad, ServedProcess
from tests.faults.tally import FORBIDDEN_CODES, FaultTally


def _batch(size: int) -> spb.ScoreBatchRequest:
    return spb.ScoreBatchRequest(requests=[spb.ScoreRequest(customer_id=f"C{n:06d}", channel="CHANNEL_VOICE")
                                           for n in range(1, size + 1)])


def test_scores_answer_while_large_batches_run(fault_server: ServedProcess,
                                               tally: FaultTally) -> None:
    calls = tally.scenario("batches beside Scores")
    batches: list[spb.ScoreBatchResponse | grpc.RpcError] = []

    def run_batches() -> None:
        with grpc.insecure_channel(fault_server.address) as channel:
            score_batch = sgrpc.ScoringServiceStub(channel).ScoreBatch
            for _ in range(3):
                batches.append(calls.call(score_batch, _batch(2000), timeout=60))

    with ScoreLoad(fault_server.address, calls, threads=1, timeout=1.0) as load:
        load.wait_calls(20)
        before = load.calls
        batcher = threading.Thread(target=run_batches)
        batcher.start()
        batcher.join(timeout=120)
        during = load.calls - before
    assert len(batches) == 3 and all(isinstance(b, spb.ScoreBatchResponse) for b in batches)
    assert all(len(b.responses) == 2000 and not any(r.degraded for r in b.responses)
               for b in batches if isinstance(b, spb.ScoreBatchResponse))
    # Every Score answered inside its 1 s deadline while the batches ran, and many did.
    assert load.failures == [], load.failures[:5]
    assert during >= 30, during


def test_a_batch_too_large_for_its_deadline_answers_inside_it_degraded(
        fault_server: ServedProcess, tally: FaultTally) -> None:
    calls = tally.scenario("batches beside Scores")
    deadline = 1.0
    with grpc.insecure_channel(fault_server.address) as channel:
        answer = calls.call(sgrpc.ScoringServiceStub(channel).ScoreBatch, _batch(10_000),
                            timeout=deadline)
    # gRPC enforces the deadline on the client: an answer at all arrived inside it. (A wall-clock
    # check here would also count connecting and decoding 10,000 answers, and failed by 7 ms in CI.)
    assert isinstance(answer, spb.ScoreBatchResponse), answer
    assert len(answer.responses) == 10_000
    late = [r for r in answer.responses if r.degraded]
    assert 0 < len(late) < 10_000
    assert all("deadline" in r.degraded_reason for r in late)
    # Customers are scored in order: the degraded ones are the tail of the batch.
    assert all(r.degraded for r in answer.responses[-len(late):])
    assert not set(calls.snapshot().codes) & set(FORBIDDEN_CODES)
