"""`effort serve`: one server process with its metrics page, or several worker processes."""

from prometheus_client import start_http_server

from service.logs import configure_logging
from service.server import create_server, ensure_port_free
from service.settings import Settings
from service.stop_signal import stop_requested
from service.workers import serve_workers


def serve(settings: Settings) -> None:
    """Runs until SIGINT/SIGTERM, then shuts down gracefully; logging is set up first."""
    configure_logging(settings.log_level, settings.log_format)
    ensure_port_free(settings.grpc_host, settings.grpc_port)  # before anything else starts
    if settings.workers > 1:
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
