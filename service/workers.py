"""Serving with several worker processes on one port (SO_REUSEPORT), metrics kept whole.

Python runs one bytecode thread per process, so scoring scales across cores with processes. Each
worker is a full server (its own Feast client, models and reloader) bound to the same port; the
kernel spreads connections over them. Behind the overload guard each worker has its own
loopback port instead, and the guard spreads calls over them. Prometheus multiprocess mode writes
every worker's metrics to files that the parent process serves as one page.
"""

import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from service.logs import configure_logging
from service.overload_guard import GuardError, OverloadGuard
from service.server import create_server
from service.settings import Settings
from service.stop_signal import stop_requested

WORKER_START_SECONDS = 300.0  # loading models and the store, before the guard is started


def _worker(settings_data: dict[str, Any]) -> None:
    settings = Settings(**settings_data)
    configure_logging(settings.log_level, settings.log_format)  # spawned: nothing inherited
    running = create_server(settings)
    stop_requested().wait()
    running.stop()


def _wait_listening(ports: list[int], workers: Sequence[BaseProcess]) -> None:
    """Returns when every worker's loopback port accepts; GuardError when a worker died first."""
    deadline = time.monotonic() + WORKER_START_SECONDS
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        if not all(worker.is_alive() for worker in workers):
            raise GuardError("a worker process exited at start; see its lines above")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", waiting[0])) == 0:
                waiting.pop(0)
                continue
        time.sleep(0.1)
    if waiting:
        raise GuardError(f"worker ports {waiting} did not listen within "
                         f"{WORKER_START_SECONDS:.0f} s")


def serve_workers(settings: Settings, stopped: threading.Event,
                  guard: OverloadGuard | None = None,
                  worker_ports: list[int] | None = None) -> None:
    """Runs `settings.workers` server processes until `stopped`, then drains them; with a
    guard, each worker listens on its port of `worker_ports` and the guard starts once they all
    do, and stops after them."""
    if settings.grpc_port == 0:
        raise ValueError("EFFORT_WORKERS > 1 needs a fixed EFFORT_GRPC_PORT, not 0")
    metrics_dir = Path(tempfile.mkdtemp(prefix="effort-metrics-"))
    # Spawned workers inherit it and import prometheus_client afresh, in multiprocess mode; this
    # process only collects their files.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    context = multiprocessing.get_context("spawn")
    ports = worker_ports or [settings.grpc_port] * settings.workers
    workers = [context.Process(target=_worker,
                               args=(settings.model_copy(update={"grpc_port": port}).model_dump(),),
                               name=f"effort-worker-{n}") for n, port in enumerate(ports)]
    for worker in workers:
        worker.start()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(settings.metrics_port, addr=settings.metrics_bind_host,
                      registry=registry)
    try:
        if guard is not None:
            _wait_listening(ports, workers)
            guard.start(registry)
        port = settings.grpc_port if guard is None else guard.config.listen_port
        print(f"Effort serving with {settings.workers} worker processes: gRPC on port {port}"
              f"{' through the overload guard' if guard else ''}, metrics on http://"
              f"{settings.metrics_bind_host}:{settings.metrics_port}/metrics "
              f"({settings.online_store} online store)", flush=True)
        while not stopped.wait(1.0):
            if not any(worker.is_alive() for worker in workers):
                break  # every worker died (for example no model): nothing left to serve
    finally:
        print("Shutting down: draining calls", flush=True)
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.join(timeout=30)
            if worker.pid is not None:
                mark_process_dead(worker.pid)
        if guard is not None:
            guard.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
