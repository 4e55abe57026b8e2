"""End to end over loopback gRPC: a real server on a real Feast store (SQLite and Redis)."""

import statistics
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY, start_http_server

from effort.v1 import journey_service_pb2 as jpb
from effort.v1 import journey_service_pb2_grpc as jgrpc
from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from features.catalog import MODEL_FEATURES
from features.model_input import ContactContext, input_vector
from features.store import apply_definitions, open_store
from service.models import load_bundle
from service.server import RunningServer, create_server
from service.settings import Settings
from tests.helpers import DemoWorld, free_port, wait_until

CUSTOMERS = [f"C{n:06d}" for n in range(1, 201)]


def _started(method: str) -> float:
    """Calls of a method this process's servers have started (py-async-grpc-prometheus)."""
    return REGISTRY.get_sample_value("grpc_server_started_total", {
        "grpc_type": "UNARY", "grpc_service": "effort.v1.JourneyService",
        "grpc_method": method}) or 0.0


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None and len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def test_scores_demo_customers_with_both_tiers_and_reasons(channel: grpc.Channel) -> None:
    stub = sgrpc.ScoringServiceStub(channel)
    responses = [stub.Score(spb.ScoreRequest(customer_id=c), timeout=10) for c in CUSTOMERS]
    assert all(0.0 <= r.effort_score <= 100.0 for r in responses)
    assert all(0.0 <= r.churn_risk <= 1.0 for r in responses)
    tiers = {r.tier for r in responses}
    assert tiers == {spb.TIER_STANDARD, spb.TIER_SENIOR}
    seniors = [r for r in responses if r.tier == spb.TIER_SENIOR]
    assert all(r.reasons and all(x.description and x.code for x in r.reasons) for r in seniors)
    assert statistics.pstdev(r.effort_score for r in responses) > 1.0
    assert statistics.pstdev(r.churn_risk for r in responses) > 0.01
    assert all(r.model_version and not r.degraded for r in responses)
    assert sum(r.customer_known for r in responses) > 150


def test_include_features_returns_named_values_and_age(channel: grpc.Channel) -> None:
    stub = sgrpc.ScoringServiceStub(channel)
    known = next(r for r in (stub.Score(spb.ScoreRequest(customer_id=c, include_features=True))
                             for c in CUSTOMERS) if r.customer_known and "contacts_7d" in r.features)
    assert {"contacts_7d", "contacts_30d", "complaint_state", "customer_value"} <= set(known.features)
    assert known.feature_age.ToTimedelta() > timedelta(0)
    without = stub.Score(spb.ScoreRequest(customer_id=known.customer_id))
    assert not without.features


def test_unknown_customer_is_scored_from_an_empty_history(channel: grpc.Channel,
                                                          demo_world: DemoWorld) -> None:
    stub = sgrpc.ScoringServiceStub(channel)
    plain = stub.Score(spb.ScoreRequest(customer_id="NOBODY42"))
    waiting = stub.Score(spb.ScoreRequest(customer_id="NOBODY42", channel="CHANNEL_VOICE",
                                          queue_wait_seconds=900.0, ivr_steps_so_far=6))
    assert not plain.customer_known and not plain.degraded and not plain.HasField("feature_age")
    # The models' own answer for no history plus the request context, not the priors.
    bundle = load_bundle(demo_world.models_dir / plain.model_version, MODEL_FEATURES)
    for response, contact in ((plain, None), (waiting, ContactContext(1, "", 900.0, 6))):
        effort, churn = bundle.predict(input_vector([], 0.0, contact or ContactContext())[None, :])
        assert response.effort_score == pytest.approx(effort[0], abs=1e-9)
        assert response.churn_risk == pytest.approx(churn[0], abs=1e-9)
    assert (plain.effort_score, plain.churn_risk) != (bundle.prior_effort_score,
                                                      bundle.prior_churn_risk)
    assert waiting.effort_score != plain.effort_score  # the request context counts


@pytest.mark.parametrize("customer_id", ["", "C 1", "x" * 65, "-leading-dash"])
def test_malformed_customer_id_is_invalid_argument_with_error_info(
        channel: grpc.Channel, customer_id: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        sgrpc.ScoringServiceStub(channel).Score(spb.ScoreRequest(customer_id=customer_id))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = _error_info(caught.value)
    assert info.metadata["field"] == "customer_id" and info.domain == "effort.v1"


def test_score_batch_scores_many_and_names_the_bad_entry(channel: grpc.Channel) -> None:
    stub = sgrpc.ScoringServiceStub(channel)
    batch = stub.ScoreBatch(spb.ScoreBatchRequest(
        requests=[spb.ScoreRequest(customer_id=c) for c in CUSTOMERS]), timeout=30)
    assert [r.customer_id for r in batch.responses] == CUSTOMERS
    single = stub.Score(spb.ScoreRequest(customer_id=CUSTOMERS[7]))
    assert batch.responses[7].churn_risk == pytest.approx(single.churn_risk)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreBatch(spb.ScoreBatchRequest(requests=[
            spb.ScoreRequest(customer_id="C000001"), spb.ScoreRequest(customer_id="")]))
    assert _error_info(caught.value).metadata["field"] == "requests[1].customer_id"


def _event(customer: str, event_id: str, when: datetime, event_type: int,
           channel: int = 0) -> jpb.JourneyEvent:
    event = jpb.JourneyEvent(event_id=event_id, customer_id=customer, type=event_type,  # type: ignore[arg-type]
                             channel=channel)  # type: ignore[arg-type]
    event.occurred_at.FromDatetime(when)
    return event


def test_record_events_then_score_sees_them(channel: grpc.Channel) -> None:
    customer = f"N{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    events = [
        _event(customer, f"{customer}-1", now - timedelta(hours=30), jpb.EVENT_TYPE_CONTACT, 1),
        _event(customer, f"{customer}-2", now - timedelta(hours=2), jpb.EVENT_TYPE_CONTACT, 2),
        _event(customer, f"{customer}-3", now - timedelta(hours=2), jpb.EVENT_TYPE_TRANSFER, 2),
        _event(customer, f"{customer}-4", now - timedelta(days=8), jpb.EVENT_TYPE_CONTACT, 3),
    ]
    bad_type = _event(customer, f"{customer}-5", now, 0)
    future = _event(customer, f"{customer}-6", now + timedelta(days=1), jpb.EVENT_TYPE_CONTACT)
    journey = jgrpc.JourneyServiceStub(channel)
    first = journey.RecordEvents(jpb.RecordEventsRequest(events=[*events, bad_type, future]))
    assert (first.accepted, first.duplicates, first.rejected) == (4, 0, 2)
    assert [(r.index, r.field) for r in first.rejected_events] == [(4, "type"), (5, "occurred_at")]
    again = journey.RecordEvents(jpb.RecordEventsRequest(events=events[:2]))
    assert (again.accepted, again.duplicates) == (0, 2)

    scored = sgrpc.ScoringServiceStub(channel).Score(
        spb.ScoreRequest(customer_id=customer, include_features=True))
    assert scored.customer_known
    features = scored.features
    assert (features["contacts_7d"], features["contacts_30d"], features["contacts_24h"]) == (2, 3, 1)
    assert (features["distinct_channels_7d"], features["transfers_7d"]) == (2, 1)


def test_health_is_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "effort.v1.ScoringService", "effort.v1.JourneyService"):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_metrics_page_shows_grpc_and_effort_metrics(channel: grpc.Channel) -> None:
    sgrpc.ScoringServiceStub(channel).Score(spb.ScoreRequest(customer_id="C000003"))
    with pytest.raises(grpc.RpcError):
        sgrpc.ScoringServiceStub(channel).Score(spb.ScoreRequest(customer_id=""))
    port = free_port()
    http_server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        http_server.shutdown()
        thread.join()
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="Score"' in page
    assert 'grpc_code="INVALID_ARGUMENT",grpc_method="Score"' in page
    assert "grpc_server_handling_seconds_bucket" in page
    for name in ("effort_customer_effort_score_bucket", "effort_churn_risk_bucket", "effort_tier_total",
                 "effort_feature_age_seconds_bucket", "effort_model_info"):
        assert name in page


def test_store_down_gives_degraded_prior_answer(demo_world: DemoWorld,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    repo = tmp_path_factory.mktemp("repo-down")
    # nobody listens there
    apply_definitions(open_store(repo, "redis", f"redis://127.0.0.1:{free_port()}/0"))
    settings = Settings(grpc_host="127.0.0.1", grpc_port=0, feature_repo=repo,
                        online_store="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0",
                        models_dir=demo_world.models_dir)
    running = create_server(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = sgrpc.ScoringServiceStub(ch)
            # Redis clients retry for seconds; every answer must still beat a 1.5 s deadline.
            answers = [stub.Score(spb.ScoreRequest(customer_id="C000001"), timeout=1.5)
                       for _ in range(5)]
            health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    finally:
        running.stop(grace=1.0)
    assert all(a.degraded and "feature store unavailable" in a.degraded_reason for a in answers)
    assert "circuit open" in answers[-1].degraded_reason  # a dead store is no longer asked
    assert 0.0 < answers[0].churn_risk < 1.0 and answers[0].model_version == demo_world.version
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_overload_is_shed_with_resource_exhausted(demo_world: DemoWorld,
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """With one call allowed in progress, a Score during a long RecordEvents is refused at once."""
    from features.events import ET, Event

    repo = tmp_path_factory.mktemp("repo-shed")
    apply_definitions(open_store(repo))
    settings = Settings(grpc_host="127.0.0.1", grpc_port=0, feature_repo=repo,
                        models_dir=demo_world.models_dir, max_concurrent_calls=1)
    now = datetime.now(UTC).timestamp()
    events = [Event(f"shed-{n}", f"S{n % 3000:06d}", now - n, ET.EVENT_TYPE_CONTACT, channel=1)
              .to_proto() for n in range(10_000)]
    running = create_server(settings)
    started_before = _started("RecordEvents")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            recording = jgrpc.JourneyServiceStub(ch).RecordEvents.future(
                jpb.RecordEventsRequest(events=events), timeout=60)
            stub = sgrpc.ScoringServiceStub(ch)
            # Recording 10,000 events takes seconds: wait until the server has started the call.
            wait_until(lambda: _started("RecordEvents") > started_before, 30,
                       "RecordEvents to start")
            with pytest.raises(grpc.RpcError) as refused:
                stub.Score(spb.ScoreRequest(customer_id="S000001"), timeout=5)
            assert not recording.done()
            assert recording.result().accepted == 10_000
            assert stub.Score(spb.ScoreRequest(customer_id="S000001"), timeout=5).customer_known
    finally:
        running.stop(grace=1.0)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None and len(status.details) == 2
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(retry)
    assert (info.reason, info.metadata["limit"]) == ("OVERLOADED", "in_flight")
    assert retry.retry_delay.ToTimedelta().total_seconds() > 0
