"""Serving with several worker processes on one port (SO_REUSEPORT), metrics kept whole.

Python runs one bytecode thread per process, so scoring scales across cores with processes. Each
worker is a full server (its own Feast client, models and reloader) bound to the same port; the
kernel spreads connections over them. Prometheus multiprocess mode writes every worker's metrics
to files that the parent process serves as one page.
"""

import multiprocessing
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from service.logs import configure_logging
from service.server import create_server
from service.settings import Settings
from service.stop_signal import stop_requested


def _worker(settings_data: dict[str, Any]) -> None:
    settings = Settings(**settings_data)
    configure_logging(settings.log_level, settings.log_format)  # spawned: nothing inherited
    running = create_server(settings)
    stop_requested().wait()
    running.stop()


def serve_workers(settings: Settings) -> None:
    """Runs `settings.workers` server processes until SIGINT/SIGTERM, then drains them."""
    if settings.grpc_port == 0:
        raise ValueError("EFFORT_WORKERS > 1 needs a fixed EFFORT_GRPC_PORT, not 0")
    metrics_dir = Path(tempfile.mkdtemp(prefix="effort-metrics-"))
    # Spawned workers inherit it and import prometheus_client afresh, in multiprocess mode; this
    # process only collects their files.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(settings.model_dump(),),
                               name=f"effort-worker-{n}") for n in range(settings.workers)]
    for worker in workers:
        worker.start()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(settings.metrics_port, addr=settings.metrics_bind_host,
                      registry=registry)
    print(f"Effort serving with {settings.workers} worker processes: gRPC on port "
          f"{settings.grpc_port}, metrics on http://{settings.metrics_bind_host}:"
          f"{settings.metrics_port}/metrics "
          f"({settings.online_store} online store)", flush=True)
    stopped = stop_requested()
    while not stopped.wait(1.0):
        if not any(worker.is_alive() for worker in workers):
            break  # every worker died (for example no model): nothing left to serve
    print("Shutting down: draining calls", flush=True)
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(timeout=30)
        if worker.pid is not None:
            mark_process_dead(worker.pid)
    shutil.rmtree(metrics_dir, ignore_errors=True)
