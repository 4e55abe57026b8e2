"""All configuration, read from EFFORT_* environment variables (pydantic-settings)."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.locations import FEATURE_REPO
from features.state import REDIS_URL_SCHEMES
from service.settings_report import ENV_PREFIX


class SettingsError(Exception):
    """A setting refused with one readable line, printed as it is. Not a ValueError: pydantic
    would wrap that in a ValidationError ("Value error, ..."), one entry of a block of them."""


class Settings(BaseSettings):
    """Effort's settings; each field is EFFORT_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    grpc_host: str = Field("127.0.0.1", description="address the gRPC server binds; any "
                           "non-loopback address needs TLS and authentication (or allow_insecure)")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port")
    metrics_host: str | None = Field(None, description="address the metrics page binds "
                                     "(default: grpc_host)")
    grpc_threads: int = Field(8, ge=1, le=256, description=(
        "threads for ScoreBatch, RecordEvents and network-store reads (Score runs on the loop)"))
    max_concurrent_calls: int = Field(128, ge=1, description=(
        "calls in progress per process beyond which new calls are shed with RESOURCE_EXHAUSTED"))
    overload_guard: bool = Field(False, description=(
        "put the overload guard (HAProxy, which must be installed) on the gRPC port: it gives "
        "each server guard_max_in_flight Score calls at a time, queues up to guard_max_queued "
        "more, sheds the rest with RESOURCE_EXHAUSTED at once, and ends TLS; the servers then "
        "listen on loopback ports behind it"))
    guard_max_in_flight: int = Field(2, ge=1, le=1024, description=(
        "Score calls the overload guard gives each server process at once"))
    guard_max_queued: int = Field(4, ge=0, le=100_000, description=(
        "Score calls per server process that may wait in the overload guard for a server; "
        "beyond them new Score calls are shed"))
    drain_seconds: float = Field(5.0, ge=0, description=(
        "after SIGTERM, how long health answers NOT_SERVING while calls are still served, so "
        "that load balancers move away before the port closes"))
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the gRPC port "
                         "(SO_REUSEPORT, only when more than 1); more than 1 needs a fixed port")
    feature_repo: Path = Field(FEATURE_REPO, description="Feast repo path; data/ beneath it")
    online_store: Literal["sqlite", "redis"] = Field("sqlite", description="online store kind")
    redis_url: str = Field("redis://localhost:6379/0", description=(
        "Redis of the journey state and Feast's online store when online_store=redis: "
        "redis:// or rediss:// (TLS), with password and db, e.g. rediss://:secret@host:6380/2"))
    models_dir: Path = Field(Path("var/models"), description="folder of versioned model folders")
    max_batch: int = Field(10_000, ge=1, description="most customers per ScoreBatch call")
    max_reasons: int = Field(5, ge=1, le=20, description="most reasons per score")
    prediction_log_dir: Path | None = Field(Path("var/predictions"), description=(
        "folder of the prediction log: each answer as a row of day-partitioned Parquet files, "
        "written off the call path; empty turns the log off"))
    prediction_log_share: float = Field(1.0, ge=0, le=1, description=(
        "share of Score and ScoreBatch calls written to the prediction log (0-1), chosen by a "
        "hash of the request id, so that a batch's rows are in or out together"))
    shadow_share: float = Field(1.0, ge=0, le=1, description=(
        "share of Score and ScoreBatch calls also scored by the shadow challenger (SHADOW, "
        "`effort models shadow`) off the call path (0-1), chosen by a hash of the request id"))
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
    tls_cert_file: Path | None = Field(None, description="PEM certificate chain: serve gRPC over "
                                       "TLS (with tls_key_file); re-read when it changes")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file")
    tls_client_ca_file: Path | None = Field(None, description="PEM CA bundle: clients must present "
                                            "a certificate it signed (mutual TLS)")
    auth_tokens_file: Path | None = Field(None, description="hashed bearer tokens with names and "
                                          "scopes (`effort tokens`); turns authentication on")
    auth_jwks_file: Path | None = Field(None, description="local JWKS file of an identity "
                                        "provider: its JSON Web Tokens are accepted too "
                                        "(with auth_jwt_issuer and auth_jwt_audience)")
    auth_jwt_issuer: str | None = Field(None, description="the `iss` JSON Web Tokens must carry")
    auth_jwt_audience: str | None = Field(None, description="the `aud` JSON Web Tokens must carry")
    allow_insecure: bool = Field(False, description="serve a non-loopback address without TLS "
                                 "or authentication (never in production)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="lowest level of the log lines `effort serve` writes to stderr")
    log_format: Literal["text", "json"] = Field("text", description="log lines as text or as "
                                                "one JSON object per line")

    @property
    def metrics_bind_host(self) -> str:
        """The address the metrics page binds: metrics_host, else the gRPC host."""
        return self.metrics_host or self.grpc_host

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        """EFFORT_LOG_LEVEL=warning and EFFORT_LOG_FORMAT=JSON are accepted too."""
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("prediction_log_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        """EFFORT_PREDICTION_LOG_DIR= (empty) turns the log off rather than meaning `.`."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="before")
    @classmethod
    def _no_redis_address(cls, values: Any) -> Any:
        """The old host:port setting is refused rather than silently ignored."""
        if "EFFORT_REDIS_ADDRESS" in os.environ:
            raise SettingsError("EFFORT_REDIS_ADDRESS was replaced by EFFORT_REDIS_URL "
                                "(redis://host:port/db)")
        return values

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        """redis:// or rediss://; the rest is checked when the Redis stores open
        (features/state.py: parse_redis_url)."""
        if not value.startswith(REDIS_URL_SCHEMES):
            raise SettingsError("EFFORT_REDIS_URL must start with redis:// or rediss:// "
                                "(e.g. redis://:password@host:6379/0)")
        return value


def setting_variables() -> dict[str, str]:
    """Each setting's field name -> its environment variable, EFFORT_<FIELD>."""
    return {field: f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields}


def variable_sources() -> dict[str, Mapping[str, str]]:
    """Where settings are read from, first the one that wins: the environment, then each env
    file that exists (`.env` in the working directory), by its name, with its variables."""
    configured = Settings.model_config.get("env_file")
    files = [] if configured is None else [configured] if isinstance(configured, str | Path) \
        else list(configured)
    encoding = Settings.model_config.get("env_file_encoding")
    sources: dict[str, Mapping[str, str]] = {"environment": os.environ}
    for file in reversed(files):  # pydantic-settings: a later file overrides an earlier one
        if Path(file).is_file():
            values = dotenv_values(file, encoding=encoding or "utf-8")
            sources[str(file)] = {k: v for k, v in values.items() if v is not None}
    return sources
