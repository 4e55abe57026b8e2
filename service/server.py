"""Builds and starts the gRPC server: stores, models, servicers, health, reflection, interceptors.

The server is grpc.aio on the process's serving loop (service/event_loop.py): calls are handled
without a thread hand-off each, which measured about twice the throughput of the thread-pool
server (BENCHMARKS.md).
"""

import asyncio
import errno
import functools
import gc
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import _async as health_aio  # what grpc_health.v1.health.aio names
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, Histogram
from py_async_grpc_prometheus.prometheus_async_server_interceptor import (
    PromAsyncServerInterceptor,
)

from effort.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    journey_service_pb2,
    journey_service_pb2_grpc,
    scoring_service_pb2,
    scoring_service_pb2_grpc,
)
from features.catalog import MODEL_FEATURES
from features.state import JourneyState
from service import metrics
from service.admin import AdminServicer
from service.admission import AdmissionControl, AdmissionInterceptor
from service.authentication import Authenticator
from service.authorization import AuthorizationInterceptor
from service.drift import DriftMonitor, start_refresher
from service.error_mapping import ErrorMappingInterceptor
from service.event_loop import run_on_loop
from service.exposure import ensure_safe_exposure
from service.feature_reader import FeastFeatureReader
from service.polling import Poller
from service.prediction_log import PredictionLog
from service.reloader import ModelReloader, load_at_start
from service.routing import RoutingPolicy
from service.scorer import Scorer
from service.servicers import JourneyServicer, ScoringServicer
from service.settings import Settings
from service.shadow import ShadowScorer
from service.shadow_loader import ShadowLoader
from service.store_watch import StoreWatch
from service.stores import open_stores
from service.streaming import StreamAdapterInterceptor
from service.tls import server_credentials

log = logging.getLogger(__name__)
SERVICE_NAMES = (
    scoring_service_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name,
    journey_service_pb2.DESCRIPTOR.services_by_name["JourneyService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)
GRACE_SECONDS = 10.0
CLOSING_SECONDS = 0.25


@dataclass
class RunningServer:
    """A started server with what is needed to stop it cleanly."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    scorer: Scorer
    state: JourneyState
    reloader: ModelReloader
    streams: StreamAdapterInterceptor
    admission: AdmissionControl
    store_watch: StoreWatch
    drain_seconds: float = 0.0
    prediction_log: PredictionLog | None = None
    drift_refresher: Poller | None = None
    shadow: ShadowScorer | None = None
    shadow_loader: ShadowLoader | None = None

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Health NOT_SERVING first (Check and Watch) while calls are still served for
        `drain_seconds`, so that balancers move away; then no new calls, and the calls in
        progress finish within `grace` seconds."""
        run_on_loop(self.health.enter_graceful_shutdown())
        if self.drain_seconds:
            log.info("draining: health NOT_SERVING, still serving for %.1f s", self.drain_seconds)
            time.sleep(self.drain_seconds)
        self.reloader.stop()
        if self.shadow_loader is not None:
            self.shadow_loader.stop()
        self.store_watch.stop()
        if self.drift_refresher is not None:
            self.drift_refresher.stop()
        # Calls still arriving are answered UNAVAILABLE for a moment before gRPC stops: gRPC
        # cancels the calls it holds that the server has not taken yet, and an idle loop takes
        # each arriving call at once.
        self.admission.closing = True
        time.sleep(CLOSING_SECONDS)
        run_on_loop(_call_soon(self.streams.end_streams))
        run_on_loop(self.server.stop(grace))
        if self.shadow is not None:
            self.shadow.close()  # hands its queued answers to the prediction log
        if self.prediction_log is not None:
            self.prediction_log.close()  # after the calls, so that it holds all their answers
        self.state.close()
        log.info("stopped")


@functools.cache
def grpc_metrics_interceptor() -> PromAsyncServerInterceptor:
    """One per process: the interceptor registers the grpc_server_* metrics when created.

    Its latency histogram is replaced by one with buckets from 0.25 ms (metrics.GRPC_BUCKETS):
    the library's start at 5 ms, above a typical Score. The library takes no buckets, so its
    histogram (a pinned version's `_metrics` entry) is swapped under the same name and labels."""
    interceptor = PromAsyncServerInterceptor(enable_handling_time_histogram=True)
    key = "grpc_server_handled_histogram"
    library = interceptor._metrics[key]
    REGISTRY.unregister(library)
    interceptor._metrics[key] = Histogram(
        library._name, library._documentation, library._labelnames,
        buckets=metrics.GRPC_BUCKETS)
    _initialise_grpc_series(interceptor)
    return interceptor


def _initialise_grpc_series(interceptor: PromAsyncServerInterceptor) -> None:
    """Creates every Effort method's grpc_server_* series at 0, each status code included, so
    that alert rules and dashboards see them from the first scrape."""
    for service in SERVICE_NAMES:
        name = service.rsplit(".", 1)[-1]
        descriptor = next(module.DESCRIPTOR.services_by_name[name] for module in (
            scoring_service_pb2, journey_service_pb2, admin_service_pb2)
            if name in module.DESCRIPTOR.services_by_name)
        for method in descriptor.methods:
            labels = ("UNARY", service, method.name)
            interceptor._metrics["grpc_server_started_counter"].labels(*labels)
            interceptor._metrics["grpc_server_handled_histogram"].labels(*labels)
            for code in grpc.StatusCode:
                interceptor._grpc_server_handled_total_counter.labels(*labels, code.name)


def create_server(settings: Settings) -> RunningServer:
    """Loads store and models and starts the gRPC server; port 0 picks a free port.

    A single server refuses a port another process listens on; worker processes share theirs
    (serve_workers checks it once for all of them). Refuses a non-loopback address without TLS
    and authentication (service/exposure.py)."""
    ensure_safe_exposure(settings)
    credentials = server_credentials(settings)
    authenticator = Authenticator.from_settings(settings)
    if settings.workers == 1:
        ensure_port_free(settings.grpc_host, settings.grpc_port)
    policy = RoutingPolicy.load(settings.routing_policy)
    bundle, refused = load_at_start(settings.models_dir, MODEL_FEATURES, policy,
                                    settings.max_reasons)
    stores = open_stores(settings)
    reader = FeastFeatureReader(stores.feature_store, stores.lock, settings.feature_timeout_seconds)
    drift = DriftMonitor(bundle.drift_reference)
    scorer = Scorer(reader, bundle, settings.max_reasons, policy, drift=drift)
    try:
        stores.recorder.flush()  # finish pushes a crash may have left pending
    except Exception as error:  # the store may be down; serve degraded rather than not at all
        log.warning("could not flush pending journey rows at start: %s", error)

    reloader = ModelReloader(scorer, settings.models_dir, MODEL_FEATURES,
                             settings.model_poll_seconds, policy, settings.max_reasons, refused)
    streams = StreamAdapterInterceptor()
    admission = AdmissionControl(settings.max_concurrent_calls)
    interceptors = [grpc_metrics_interceptor(), streams,
                    *([AuthorizationInterceptor(authenticator)] if authenticator.enabled else []),
                    AdmissionInterceptor(admission), ErrorMappingInterceptor()]
    # Each process its own writer: worker processes' file names carry their pid.
    prediction_log = (None if settings.prediction_log_dir is None else
                      PredictionLog(settings.prediction_log_dir, settings.prediction_log_share))
    shadow = ShadowScorer(policy, settings.shadow_share, prediction_log)
    shadow_loader = ShadowLoader(shadow, settings.models_dir, MODEL_FEATURES,
                                 settings.model_poll_seconds, lambda: scorer.bundle.version,
                                 policy, settings.max_reasons)
    shadow_loader.check()  # a SHADOW set before the start is shadowed from the first call
    servicers = _Servicers(ScoringServicer(scorer, settings.max_batch, prediction_log, shadow),
                           JourneyServicer(stores.recorder, settings.store_timeout_seconds),
                           AdminServicer(scorer, reloader))
    server, port, health_servicer = run_on_loop(
        _start_grpc(settings, servicers, interceptors, credentials))
    reloader.start()
    shadow_loader.start()
    store_watch = StoreWatch(stores.state, scorer.store_data_lost, settings.store_check_seconds)
    store_watch.start()
    _freeze_start_up_objects()
    log.info("serving model %s on %s:%d (%s, %s)", bundle.version, settings.grpc_host, port,
             "TLS" if credentials else "plaintext",
             "tokens required" if authenticator.enabled else "no authentication")
    return RunningServer(server, port, health_servicer, scorer, stores.state, reloader,
                         streams, admission, store_watch, settings.drain_seconds, prediction_log,
                         start_refresher(drift), shadow, shadow_loader)


def ensure_port_free(host: str, port: int) -> None:
    """Raises OSError with one readable line when another process listens on host:port.

    gRPC would fail too, but after logging its own multi-line error."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except OSError:
        return  # an unknown host: gRPC's bind reports it
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"gRPC port {port} on {host} is already in "
                                  "use by another process (another Effort server?); stop it or "
                                  "set EFFORT_GRPC_PORT") from None


async def _call_soon(function: Callable[[], None]) -> None:
    """Runs `function` on the serving loop (what run_on_loop needs a coroutine for)."""
    function()


def _freeze_start_up_objects() -> None:
    """Start-up leaves some 270,000 long-lived objects (Feast, protobuf descriptors, models);
    freezing them keeps full collections from pausing calls for tens of milliseconds."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class _Servicers:
    scoring: ScoringServicer
    journey: JourneyServicer
    admin: AdminServicer


async def _start_grpc(settings: Settings, servicers: _Servicers,
                      interceptors: list[grpc.aio.ServerInterceptor],
                      credentials: grpc.ServerCredentials | None,
                      ) -> tuple[grpc.aio.Server, int, health_aio.HealthServicer]:
    """Creates, binds and starts the aio server on the serving loop.

    Interceptors run outermost first: metrics count every answer, refusals included; the stream
    adapter lets them count Health.Watch; tokens are checked before admission, and errors are
    mapped inside it, around the handlers."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(settings.grpc_threads, thread_name_prefix="effort-worker"))
    server = grpc.aio.server(
        # Only worker processes share the port; a single server must not share it unnoticed.
        options=[("grpc.so_reuseport", 1 if settings.workers > 1 else 0)],
        interceptors=interceptors,
    )
    scoring_service_pb2_grpc.add_ScoringServiceServicer_to_server(servicers.scoring, server)
    journey_service_pb2_grpc.add_JourneyServiceServicer_to_server(servicers.journey, server)
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(servicers.admin, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        port = (server.add_secure_port(address, credentials) if credentials
                else server.add_insecure_port(address))
    except RuntimeError:  # gRPC's "Failed to bind", e.g. a port taken since ensure_port_free
        port = 0
    if port == 0:
        raise OSError(f"cannot bind gRPC port {settings.grpc_host}:{settings.grpc_port}")
    await server.start()
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer
