"""Reference servers measured beside Effort (docs/performance.md), each run as its own process.

- floor: a grpc.aio server whose Score returns a constant: the floor of Python gRPC;
- straightforward: sync gRPC, Feast get_online_features(...).to_dict(), two Booster.predict
  calls and LightGBM pred_contrib (exact TreeSHAP) for reasons, on the same store and models.

Usage: python bench/baseline_servers.py floor|straightforward PORT
"""

import asyncio
import sys
from concurrent import futures
from pathlib import Path

import grpc

from effort.v1 import scoring_service_pb2 as pb
from effort.v1 import scoring_service_pb2_grpc as pb_grpc


class ConstantScoring(pb_grpc.ScoringServiceServicer):
    """Answers every Score with the same response."""

    _answer = pb.ScoreResponse(effort_score=50.0, churn_risk=0.1, tier=pb.TIER_STANDARD)

    async def Score(self, request: pb.ScoreRequest, context: object) -> pb.ScoreResponse:
        return self._answer


async def serve_floor(port: int) -> None:
    """The constant grpc.aio server."""
    server = grpc.aio.server()
    pb_grpc.add_ScoringServiceServicer_to_server(ConstantScoring(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def serve_straightforward(port: int) -> None:
    """The service as a first version would write it."""
    import numpy as np

    from features.catalog import FEATURE_NAMES, FEATURE_SERVICE_NAME
    from features.store import open_store
    from service.models import load_bundle
    from service.settings import Settings
    from training.boosters import lightgbm_boosters
    from training.registry import current_folder

    settings = Settings()
    store = open_store(settings.feature_repo, settings.online_store, settings.redis_url)
    bundle = load_bundle(current_folder(settings.models_dir))
    service = store.get_feature_service(FEATURE_SERVICE_NAME)
    width = len(bundle.feature_names)
    effort_model, churn_model = lightgbm_boosters(bundle.folder)

    class Straightforward(pb_grpc.ScoringServiceServicer):
        def Score(self, request: pb.ScoreRequest, context: object) -> pb.ScoreResponse:
            values = store.get_online_features(
                features=service, entity_rows=[{"customer_id": request.customer_id}]).to_dict()
            row = [np.nan if values[name][0] is None else float(values[name][0])
                   for name in FEATURE_NAMES]
            x = np.array([row + [np.nan] * (width - len(row))])
            effort = effort_model.predict(x)
            churn = churn_model.predict(x)
            churn_model.predict(x, pred_contrib=True)
            effort_model.predict(x, pred_contrib=True)
            return pb.ScoreResponse(customer_id=request.customer_id,
                                    effort_score=float((7 - effort[0]) / 6 * 100),
                                    churn_risk=float(churn[0]))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_ScoringServiceServicer_to_server(Straightforward(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    kind, port_text = sys.argv[1], sys.argv[2]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if kind == "floor":
        asyncio.run(serve_floor(int(port_text)))
    else:
        serve_straightforward(int(port_text))
