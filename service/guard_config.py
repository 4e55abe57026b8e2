"""The overload guard's HAProxy configuration: each server gets a few Score calls at a time, a
short queue in HAProxy absorbs bursts, and a Score arriving to a full queue gets a static
RESOURCE_EXHAUSTED answer (ErrorInfo and RetryInfo) from HAProxy at once.

Why a proxy: grpc.aio takes one call at a time from gRPC's core, so a burst waits in core's
queue where Python cannot count it, and refusing a call in Python costs a large part of what
scoring it costs (docs/reliability.md, Overload). HAProxy counts the Score calls it has passed
to the servers and answers the rest itself, in C, for a few microseconds each.
"""

import base64
from dataclasses import dataclass
from pathlib import Path

from service.admission import MIN_RETRY_SECONDS, Shed, overloaded_status

SCORE_PATH = "/effort.v1.ScoringService/Score"
SCORE_BACKEND = "score"  # Score calls only: the limited ones
OTHER_BACKEND = "other"  # everything else: health, reflection, batches, writes, admin
# Health.Watch streams and 10,000-customer batches stay open for long; the servers keep the
# deadlines, so the proxy's own idle timeouts only end connections nobody uses.
IDLE_TIMEOUT = "1h"
# A safety net only: the queue's length bound keeps waits to milliseconds. A call that still
# waits this long gets HAProxy's 503, which gRPC clients see as UNAVAILABLE.
QUEUE_TIMEOUT = "1s"


@dataclass(frozen=True)
class GuardConfig:
    """Where the guard listens, the servers behind it, its limit and its files."""

    listen_host: str
    listen_port: int
    backend_ports: tuple[int, ...]  # one per server process, on 127.0.0.1
    max_in_flight: int  # Score calls each server is given at once
    max_queued: int  # Score calls waiting in HAProxy for a server, over all servers
    stats_socket: Path
    shed_reply: Path  # the static answer, written by write_shed_reply
    tls_pem: Path | None = None  # certificate chain and key in one file: the guard ends TLS
    client_ca: Path | None = None  # with tls_pem: clients must present a certificate it signed


def guard_shed(max_queued: int) -> Shed:
    """Why the guard refuses a Score: the server's ErrorInfo reason, with the limit `queue`."""
    return Shed("queue", f"{max_queued} Score calls waiting at the overload guard, the limit",
                MIN_RETRY_SECONDS)


def shed_reply(max_queued: int) -> bytes:
    """The guard's answer to a shed call, an HTTP/1 message HAProxy turns into HTTP/2: a gRPC
    Trailers-Only response, grpc-status 8 with the google.rpc.Status in grpc-status-details-bin."""
    status = overloaded_status(guard_shed(max_queued))
    details = base64.b64encode(status.SerializeToString()).decode("ascii")
    lines = ["HTTP/1.1 200 OK", "content-type: application/grpc",
             f"grpc-status: {status.code}", f"grpc-message: {status.message}",
             f"grpc-status-details-bin: {details}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _bind_address(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def render(config: GuardConfig) -> str:
    """The haproxy.cfg text."""
    tls = ""
    if config.tls_pem is not None:
        tls = f" ssl crt {config.tls_pem} alpn h2"
        if config.client_ca is not None:
            tls += f" ca-file {config.client_ca} verify required"
    bind = f"{_bind_address(config.listen_host, config.listen_port)}{tls} proto h2"
    limited = "\n".join(f"    server effort{n} 127.0.0.1:{port} proto h2 "
                        f"maxconn {config.max_in_flight}"
                        for n, port in enumerate(config.backend_ports))
    servers = "\n".join(f"    server effort{n} 127.0.0.1:{port} proto h2"
                        for n, port in enumerate(config.backend_ports))
    return f"""\
# Written by Effort's overload guard (service/guard_config.py); rewritten at every start.
global
    maxconn 4000
    nbthread 1
    stats socket {config.stats_socket} mode 600 level user

defaults
    mode http
    timeout connect 2s
    timeout client {IDLE_TIMEOUT}
    timeout server {IDLE_TIMEOUT}

frontend grpc
    bind {bind}
    acl score path {SCORE_PATH}
    acl score_full queue({SCORE_BACKEND}) ge {config.max_queued}
    http-request return status 200 errorfile {config.shed_reply} if score score_full
    use_backend {SCORE_BACKEND} if score
    default_backend {OTHER_BACKEND}

backend {SCORE_BACKEND}
    balance leastconn
    timeout queue {QUEUE_TIMEOUT}
{limited}

backend {OTHER_BACKEND}
    balance leastconn
{servers}
"""
