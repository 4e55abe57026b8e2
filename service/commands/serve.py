"""`effort serve`: run the gRPC server and the metrics endpoint until SIGINT/SIGTERM."""

import argparse

from service.serve import serve
from service.settings import Settings


def run(args: argparse.Namespace) -> None:
    """Serves with the settings, command-line options taking precedence."""
    overrides = {k: v for k, v in (("grpc_port", args.port), ("metrics_port", args.metrics_port),
                                   ("online_store", args.online_store)) if v is not None}
    serve(Settings(**overrides))  # validated, unlike model_copy(update=...)
