"""`effort serve`: one server process with its metrics page, or several worker processes."""

import logging

from prometheus_client import REGISTRY, start_http_server

from service.exposure import ensure_safe_exposure
from service.logs import configure_logging
from service.overload_guard import OverloadGuard, free_loopback_port
from service.server import create_server, ensure_port_free
from service.settings import Settings, setting_variables, variable_sources
from service.settings_report import unknown_variables
from service.stop_signal import stop_requested
from service.workers import serve_workers

log = logging.getLogger(__name__)


def warn_unknown_variables() -> None:
    """One WARNING line naming the EFFORT_* variables no setting reads (typos, old names)."""
    unknown = unknown_variables(variable_sources(), setting_variables().values())
    if unknown:
        log.warning("unknown EFFORT_* variables, ignored: %s",
                    ", ".join(variable.describe() for variable in unknown))


def behind_guard(settings: Settings, port: int) -> Settings:
    """The settings of a server behind the overload guard: plaintext on a loopback port (the
    guard ends TLS); tokens are still checked by the server, and the metrics page stays put."""
    return settings.model_copy(update={
        "grpc_host": "127.0.0.1", "grpc_port": port, "metrics_host": settings.metrics_bind_host,
        "tls_cert_file": None, "tls_key_file": None, "tls_client_ca_file": None})


def serve(settings: Settings) -> None:
    """Runs until SIGINT/SIGTERM, then shuts down gracefully; logging is set up first."""
    configure_logging(settings.log_level, settings.log_format)
    warn_unknown_variables()
    ensure_safe_exposure(settings)  # before anything else starts
    ensure_port_free(settings.grpc_host, settings.grpc_port)
    stopped = stop_requested()
    guard, worker_ports = None, None
    if settings.overload_guard:
        worker_ports = [free_loopback_port() for _ in range(settings.workers)]
        guard = OverloadGuard(settings, worker_ports, on_exit=stopped)  # checks its files now
        settings = behind_guard(settings, worker_ports[0])
    if settings.workers > 1:
        serve_workers(settings, stopped, guard, worker_ports)
        return
    start_http_server(settings.metrics_port, addr=settings.metrics_bind_host)
    try:
        running = create_server(settings)
    except BaseException:
        if guard is not None:
            guard.stop()  # not started yet: removes its files
        raise
    try:
        if guard is not None:
            guard.start(REGISTRY)
        port = running.port if guard is None else guard.config.listen_port
        print(f"Effort serving model {running.scorer.bundle.version}: gRPC on port {port}"
              f"{' through the overload guard' if guard else ''}, metrics on "
              f"http://{settings.metrics_bind_host}:{settings.metrics_port}/metrics "
              f"({settings.online_store} online store)", flush=True)
        stopped.wait()
    finally:
        print("Shutting down: draining calls", flush=True)
        running.stop()
        if guard is not None:
            guard.stop()
