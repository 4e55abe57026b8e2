"""Container health check of the Effort server in the same container: one
grpc.health.v1.Health/Check call on the gRPC port.

Exit status 0 when the service answers SERVING; 1 otherwise (NOT_SERVING while the server drains
after SIGTERM, SERVICE_UNKNOWN, no answer within --timeout, a refused connection or a failed TLS
handshake), with one line saying which. Health checks need no token (README, Security).

Used by the image's HEALTHCHECK (plaintext, deploy/compose.yaml) and by the Kubernetes exec
probes (deploy/k8s/deployment.yaml), which speak TLS with --ca: kubelet's built-in gRPC probes
cannot. The image installs it as /app/healthcheck.py. It imports grpcio alone, not Effort
(about 0.1 s of CPU instead of 0.4 s per probe), so it builds its channel as
service/channels.py does.

    python /app/healthcheck.py                                   # 127.0.0.1:$EFFORT_GRPC_PORT
    python /app/healthcheck.py --address localhost:50051 --ca /etc/effort/tls/ca.crt
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def default_address() -> str:
    """127.0.0.1 on the port the server binds (EFFORT_GRPC_PORT, default 50051)."""
    return f"127.0.0.1:{os.environ.get('EFFORT_GRPC_PORT') or 50051}"


def build_parser() -> argparse.ArgumentParser:
    """The health check's arguments."""
    parser = argparse.ArgumentParser(description="Exit 0 when the Effort server answers SERVING "
                                     "to grpc.health.v1.Health/Check.")
    parser.add_argument("--address", default=default_address(),
                        help="host:port of the gRPC server (default 127.0.0.1:$EFFORT_GRPC_PORT); "
                        "with TLS, a host the server certificate names, such as localhost")
    parser.add_argument("--service", default="", help="service to ask about: '' (the server, "
                        "default), effort.v1.ScoringService, effort.v1.JourneyService or "
                        "effort.v1.AdminService")
    parser.add_argument("--timeout", type=float, default=3.0, help="deadline in seconds")
    parser.add_argument("--ca", type=Path, help="PEM CA bundle to trust: TLS to the server")
    parser.add_argument("--cert", type=Path, help="PEM client certificate (mutual TLS)")
    parser.add_argument("--key", type=Path, help="PEM private key of --cert")
    return parser


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """Plaintext without --ca/--cert/--key, else TLS trusting --ca (the system's roots without
    it), with the client certificate --cert/--key for mutual TLS. Raises OSError when a file
    cannot be read, ValueError when only one of --cert and --key is given."""
    if args.ca is None and args.cert is None and args.key is None:
        return grpc.insecure_channel(args.address)
    if (args.cert is None) != (args.key is None):
        raise ValueError("mutual TLS needs both --cert and --key")
    root = args.ca.read_bytes() if args.ca else None
    cert = args.cert.read_bytes() if args.cert else None
    key = args.key.read_bytes() if args.key else None
    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key,
                                               certificate_chain=cert)
    return grpc.secure_channel(args.address, credentials)


def check(args: argparse.Namespace) -> tuple[bool, str]:
    """(healthy, one line) for one Health/Check call."""
    try:
        channel = open_channel(args)
    except (OSError, ValueError) as error:
        return False, f"unhealthy: {error}"
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=args.service),
                                timeout=args.timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            name = code.name if code is not None else "error"
            return False, f"unhealthy: {args.address} {name}" + (f": {details}" if details else "")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == SERVING, f"{args.address} {args.service or '(server)'}: {status}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one check and prints its line: to stdout when healthy, else to stderr."""
    healthy, line = check(build_parser().parse_args(argv))
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
