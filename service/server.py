"""Builds and runs the gRPC server: servicers, health, reflection, metrics, graceful shutdown."""

import functools
import logging
import signal
import threading
from concurrent import futures
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from py_grpc_prometheus.prometheus_server_interceptor import PromServerInterceptor

from features.catalog import MODEL_FEATURES
from features.recorder import JourneyRecorder
from features.state import JourneyState, open_state
from features.store import open_store
from service.api.v1 import (
    journey_service_pb2,
    journey_service_pb2_grpc,
    scoring_service_pb2,
    scoring_service_pb2_grpc,
)
from service.errors import ErrorMappingInterceptor
from service.feature_reader import FeastFeatureReader
from service.model_bundle import load_bundle
from service.registry import current_folder
from service.reloader import ModelReloader
from service.routing import RoutingPolicy
from service.scoring import Scorer
from service.settings import Settings

log = logging.getLogger(__name__)
SERVICE_NAMES = (
    scoring_service_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name,
    journey_service_pb2.DESCRIPTOR.services_by_name["JourneyService"].full_name,
)
GRACE_SECONDS = 10.0


@dataclass
class RunningServer:
    """A started server with what is needed to stop it cleanly."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    scorer: Scorer
    state: JourneyState
    reloader: ModelReloader

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Health NOT_SERVING first, then drain in-flight calls within `grace` seconds."""
        self.health.enter_graceful_shutdown()
        self.reloader.stop()
        self.server.stop(grace).wait()
        self.state.close()


@functools.cache
def grpc_metrics_interceptor() -> PromServerInterceptor:
    """One per process: the interceptor registers the grpc_server_* metrics when created."""
    return PromServerInterceptor(enable_handling_time_histogram=True)


def create_server(settings: Settings) -> RunningServer:
    """Loads store and models and starts the gRPC server; port 0 picks a free port."""
    store = open_store(settings.feature_repo, settings.online_store, settings.redis_address)
    # Feast's SQLite store shares one connection across threads; Redis clients are thread-safe.
    store_lock: AbstractContextManager[object] = (
        threading.Lock() if settings.online_store == "sqlite" else nullcontext())
    bundle = load_bundle(current_folder(settings.models_dir), MODEL_FEATURES)
    reader = FeastFeatureReader(store, store_lock, settings.feature_timeout_seconds)
    scorer = Scorer(reader, bundle, settings.max_reasons,
                    RoutingPolicy.load(settings.routing_policy))
    state = open_state(settings.online_store, settings.feature_repo, settings.redis_address)
    recorder = JourneyRecorder(store, state, store_lock)
    try:
        recorder.flush()  # finish pushes a crash may have left pending
    except Exception as error:  # the store may be down; serve degraded rather than not at all
        log.warning("could not flush pending journey rows at start: %s", error)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_threads),
        options=[("grpc.so_reuseport", 1)],  # worker processes share the port
        interceptors=[grpc_metrics_interceptor(), ErrorMappingInterceptor()],
    )
    from service.servicers import JourneyServicer, ScoringServicer

    scoring_service_pb2_grpc.add_ScoringServiceServicer_to_server(
        ScoringServicer(scorer, settings.max_batch), server)
    journey_service_pb2_grpc.add_JourneyServiceServicer_to_server(JourneyServicer(recorder), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
    if port == 0:
        raise OSError(f"cannot bind gRPC port {settings.grpc_host}:{settings.grpc_port}")
    server.start()
    for name in (*SERVICE_NAMES, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reloader = ModelReloader(scorer, settings.models_dir, MODEL_FEATURES,
                             settings.model_poll_seconds)
    reloader.start()
    log.info("serving model %s on port %d", bundle.version, port)
    return RunningServer(server, port, health_servicer, scorer, state, reloader)


def stop_requested() -> threading.Event:
    """An event set by SIGINT or SIGTERM (call from the main thread)."""
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    return stopped


def serve(settings: Settings) -> None:
    """Runs until SIGINT/SIGTERM, then shuts down gracefully."""
    if settings.workers > 1:
        from service.workers import serve_workers

        serve_workers(settings)
        return
    start_http_server(settings.metrics_port)
    running = create_server(settings)
    print(f"Effort serving model {running.scorer.bundle.version}: gRPC on port {running.port}, "
          f"metrics on http://localhost:{settings.metrics_port}/metrics "
          f"({settings.online_store} online store)", flush=True)
    stop_requested().wait()
    print("Shutting down: draining calls", flush=True)
    running.stop()
