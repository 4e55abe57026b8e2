"""Builds and runs the gRPC server: servicers, health, reflection, metrics, graceful shutdown.

The server is grpc.aio: calls are handled on one event loop without a thread hand-off each, which
measured about twice the throughput of the thread-pool server (BENCHMARKS.md). The loop runs in a
background thread shared by every server of the process, so that starting and stopping stay plain
function calls for the CLI, the worker processes and the tests.
"""

import asyncio
import functools
import gc
import logging
import signal
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import _async as health_aio  # what grpc_health.v1.health.aio names
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from py_async_grpc_prometheus.prometheus_async_server_interceptor import (
    PromAsyncServerInterceptor,
)

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
T = TypeVar("T")


@functools.cache
def _event_loop() -> asyncio.AbstractEventLoop:
    """The process's serving loop, running in a daemon thread."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="grpc-aio-loop", daemon=True).start()
    return loop


def _on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on the serving loop and waits for its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, _event_loop()).result()


@dataclass
class RunningServer:
    """A started server with what is needed to stop it cleanly."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    scorer: Scorer
    state: JourneyState
    reloader: ModelReloader

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Health NOT_SERVING first, then drain in-flight calls within `grace` seconds."""
        _on_loop(self.health.enter_graceful_shutdown())
        self.reloader.stop()
        _on_loop(self.server.stop(grace))
        self.state.close()


@functools.cache
def grpc_metrics_interceptor() -> PromAsyncServerInterceptor:
    """One per process: the interceptor registers the grpc_server_* metrics when created."""
    return PromAsyncServerInterceptor(enable_handling_time_histogram=True)


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

    server, port, health_servicer = _on_loop(_start_grpc(settings, scorer, recorder))
    reloader = ModelReloader(scorer, settings.models_dir, MODEL_FEATURES,
                             settings.model_poll_seconds)
    reloader.start()
    # Start-up leaves some 270,000 long-lived objects (Feast, protobuf descriptors, models);
    # freezing them keeps full collections from pausing calls for tens of milliseconds.
    gc.collect()
    gc.freeze()
    log.info("serving model %s on port %d", bundle.version, port)
    return RunningServer(server, port, health_servicer, scorer, state, reloader)


async def _start_grpc(settings: Settings, scorer: Scorer, recorder: JourneyRecorder,
                      ) -> tuple[grpc.aio.Server, int, health_aio.HealthServicer]:
    """Creates, binds and starts the aio server on the serving loop."""
    from service.servicers import JourneyServicer, ScoringServicer

    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(settings.grpc_threads, thread_name_prefix="effort-worker"))
    server = grpc.aio.server(
        options=[("grpc.so_reuseport", 1)],  # worker processes share the port
        # Overload is shed at once (RESOURCE_EXHAUSTED) so that admitted calls keep their latency.
        maximum_concurrent_rpcs=settings.max_concurrent_calls,
        interceptors=[grpc_metrics_interceptor(), ErrorMappingInterceptor()],
    )
    scoring_service_pb2_grpc.add_ScoringServiceServicer_to_server(
        ScoringServicer(scorer, settings.max_batch), server)
    journey_service_pb2_grpc.add_JourneyServiceServicer_to_server(JourneyServicer(recorder), server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
    if port == 0:
        raise OSError(f"cannot bind gRPC port {settings.grpc_host}:{settings.grpc_port}")
    await server.start()
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


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
