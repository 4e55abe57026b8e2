"""`effort serve`: one server process with its metrics page, or several worker processes."""

import logging

from prometheus_client import start_http_server

from service.exposure import ensure_safe_exposure
from service.logs import configure_logging
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


def serve(settings: Settings) -> None:
    """Runs until SIGINT/SIGTERM, then shuts down gracefully; logging is set up first."""
    configure_logging(settings.log_level, settings.log_format)
    warn_unknown_variables()
    ensure_safe_exposure(settings)  # before anything else starts
    ensure_port_free(settings.grpc_host, settings.grpc_port)
    if settings.workers > 1:
        serve_workers(settings)
        return
    start_http_server(settings.metrics_port, addr=settings.metrics_bind_host)
    running = create_server(settings)
    print(f"Effort serving model {running.scorer.bundle.version}: gRPC on port {running.port}, "
          f"metrics on http://{settings.metrics_bind_host}:{settings.metrics_port}/metrics "
          f"({settings.online_store} online store)", flush=True)
    stop_requested().wait()
    print("Shutting down: draining calls", flush=True)
    running.stop()
