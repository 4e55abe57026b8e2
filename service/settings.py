"""All configuration, read from EFFORT_* environment variables (pydantic-settings)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.store import FEATURE_REPO


class Settings(BaseSettings):
    """Effort's settings; each field is EFFORT_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="EFFORT_", env_file=".env", extra="ignore")

    grpc_host: str = Field("0.0.0.0", description="address the gRPC server binds")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port")
    grpc_threads: int = Field(8, ge=1, le=256, description=(
        "threads for ScoreBatch, RecordEvents and network-store reads (Score runs on the loop)"))
    max_concurrent_calls: int = Field(128, ge=1, description=(
        "calls in progress per process beyond which new calls are shed with RESOURCE_EXHAUSTED"))
    drain_seconds: float = Field(5.0, ge=0, description=(
        "after SIGTERM, how long health answers NOT_SERVING while calls are still served, so "
        "that load balancers move away before the port closes"))
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the gRPC port "
                         "(SO_REUSEPORT, only when more than 1); more than 1 needs a fixed port")
    feature_repo: Path = Field(FEATURE_REPO, description="Feast repo path; data/ beneath it")
    online_store: Literal["sqlite", "redis"] = Field("sqlite", description="online store kind")
    redis_address: str = Field("localhost:6379", description="Redis host:port when online_store=redis")
    models_dir: Path = Field(Path("var/models"), description="folder of versioned model folders")
    max_batch: int = Field(10_000, ge=1, description="most customers per ScoreBatch call")
    max_reasons: int = Field(5, ge=1, le=20, description="most reasons per score")
    feature_timeout_seconds: float = Field(1.0, gt=0, description="longest wait for the online "
                                           "store per call (plus 1 ms per customer), within the "
                                           "caller's deadline; later answers are degraded")
    store_timeout_seconds: float = Field(2.0, gt=0, description=(
        "longest a RecordEvents call waits on the stores (within the caller's deadline) before "
        "it answers UNAVAILABLE; also each Redis command's timeout, without retries"))
    store_check_seconds: float = Field(5.0, ge=0, description=(
        "how often to check that the feature store still holds its data (its load marker); "
        "0 checks only at start"))
    routing_policy: Path | None = Field(None, description="JSON routing policy file "
                                        "(service/routing.py); default: model thresholds and the "
                                        "unacknowledged-complaint rule")
    model_poll_seconds: float = Field(2.0, ge=0, description="how often to look for a newly "
                                      "promoted model; 0 turns hot reload off")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="lowest level of the log lines `effort serve` writes to stderr")
    log_format: Literal["text", "json"] = Field("text", description="log lines as text or as "
                                                "one JSON object per line")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        """EFFORT_LOG_LEVEL=warning and EFFORT_LOG_FORMAT=JSON are accepted too."""
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()
