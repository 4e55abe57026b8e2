"""effort.v1.AdminService: the loaded model's summary, and a reload of CURRENT on demand."""

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from effort.v1 import admin_service_pb2 as admin_pb
from effort.v1 import admin_service_pb2_grpc as admin_grpc
from service.reloader import ModelReloader
from service.scorer import Scorer

OUTCOMES = {"unchanged": admin_pb.ReloadModelResponse.OUTCOME_UNCHANGED,
            "swapped": admin_pb.ReloadModelResponse.OUTCOME_SWAPPED,
            "refused": admin_pb.ReloadModelResponse.OUTCOME_REFUSED}


def model_summary(scorer: Scorer) -> admin_pb.ModelSummary:
    """The served model's version and the manifest fields an operator checks."""
    bundle = scorer.bundle
    manifest = bundle.manifest
    metrics = manifest.get("metrics") or {}
    summary = admin_pb.ModelSummary(
        version=bundle.version, loaded_at=_timestamp(scorer.loaded_at),
        feature_service=str(manifest.get("feature_service") or ""),
        feature_count=len(bundle.feature_names),
        synthetic_data=bool(manifest.get("synthetic_data", False)),
        senior_share_target=float(manifest.get("senior_share_target") or 0.0),
        effort_score_threshold=bundle.thresholds.effort_score,
        churn_risk_threshold=bundle.thresholds.churn_risk,
        test_metrics={name: float(value) for name, value in metrics.items()
                      if isinstance(value, int | float) and not isinstance(value, bool)},
        code_commit=str(manifest.get("code_commit") or ""))
    created = manifest.get("created_at")
    if isinstance(created, str):
        # An odd date in an older manifest leaves trained_at unset rather than failing the call.
        with contextlib.suppress(ValueError):
            summary.trained_at.CopyFrom(_timestamp(datetime.fromisoformat(created)))
    return summary


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class AdminServicer(admin_grpc.AdminServiceServicer):
    """GetModel answers from memory; ReloadModel loads in a worker thread, off the serving loop."""

    def __init__(self, scorer: Scorer, reloader: ModelReloader) -> None:
        self._scorer = scorer
        self._reloader = reloader

    async def GetModel(self, request: admin_pb.GetModelRequest,
                       context: Any) -> admin_pb.GetModelResponse:
        return admin_pb.GetModelResponse(model=model_summary(self._scorer))

    async def ReloadModel(self, request: admin_pb.ReloadModelRequest,
                          context: Any) -> admin_pb.ReloadModelResponse:
        result = await asyncio.to_thread(self._reloader.reload_now)
        return admin_pb.ReloadModelResponse(
            outcome=OUTCOMES[result.outcome], current_version=result.current_version,
            model=model_summary(self._scorer), refusal=result.refusal)
