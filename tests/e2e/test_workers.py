"""Several worker processes on one port: calls are served and the metrics page adds them all up."""

import os
import re
import signal
import subprocess
import sys
import urllib.request

import grpc

from effort.v1 import scoring_service_pb2 as spb
from effort.v1 import scoring_service_pb2_grpc as sgrpc
from tests.helpers import DemoWorld, free_port, listening_sockets, wait_serving, wait_until

CALLS = 40


def test_two_workers_share_the_port_and_the_metrics(demo_world: DemoWorld) -> None:
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "EFFORT_WORKERS": "2", "EFFORT_GRPC_PORT": str(port),
           "EFFORT_GRPC_HOST": "127.0.0.1", "EFFORT_METRICS_PORT": str(metrics_port),
           "EFFORT_FEATURE_REPO": str(demo_world.repo),
           "EFFORT_MODELS_DIR": str(demo_world.models_dir)}
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_serving(port, process, what="workers")
        # Each worker listens on its own socket (SO_REUSEPORT): wait until both do.
        wait_until(lambda: listening_sockets(port) == 2, 120, "both workers to listen")
        for n in range(CALLS):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # new connection each
                answer = sgrpc.ScoringServiceStub(channel).Score(
                    spb.ScoreRequest(customer_id=f"C{n + 1:06d}"), timeout=10)
                assert answer.model_version == demo_world.version
        page = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                      timeout=10).read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    handled = [float(v) for v in re.findall(
        r'grpc_server_handled_total\{[^}]*grpc_code="OK"[^}]*grpc_method="Score"[^}]*\} (\S+)',
        page)]
    assert sum(handled) == CALLS, page[:2000]
    assert "effort_tier_total" in page and "effort_model_info" in page
    assert process.returncode == 0, output[-2000:]
