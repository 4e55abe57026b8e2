"""Effort's domain metrics (effort_*); the standard grpc_server_* ones come from py-async-grpc-prometheus.

Every labelled metric has its label values created at 0 when this module is imported (the drift
indexes at NaN, not measured yet), so that rate() and absent() work from the first scrape
(monitoring/prometheus/ relies on it).
"""

import math
import platform
from importlib import metadata

from prometheus_client import Counter, Gauge, Histogram

from features.catalog import MODEL_FEATURES
from training.reference_distributions import SCORES

SCORE_BUCKETS = tuple(float(b) for b in range(0, 101, 10))
# Seconds; from 0.1 ms, as a Score takes about 1-3 ms in all and its stages a fraction of that.
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# The gRPC latency histogram's buckets, from 0.25 ms (service/server.py installs them).
GRPC_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400)
RISK_BUCKETS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
AGE_BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)

EFFORT_SCORE = Histogram("effort_customer_effort_score", "Customer-effort scores returned "
                         "(0-100).", buckets=SCORE_BUCKETS)
CHURN_RISK = Histogram("effort_churn_risk", "Churn risks returned (0-1).", buckets=RISK_BUCKETS)
TIER_TOTAL = Counter("effort_tier_total", "Scores returned by routing tier (one per customer "
                     "answered, degraded answers included).", ["tier"])
DEGRADED_TOTAL = Counter("effort_degraded_total", "Answers that fell back to priors, by reason.",
                         ["reason"])
DEGRADED_REASONS = ("feature_store_unavailable", "timeout", "circuit_open", "unusable_row",
                    "deadline", "store_data_lost")
UNKNOWN_CUSTOMER_TOTAL = Counter("effort_unknown_customer_total",
                                 "Scores for customers with no stored journey (scored from an "
                                 "empty history plus the request context).")
FEATURE_AGE = Histogram("effort_feature_age_seconds", "Age of the feature values used for scoring.",
                        buckets=AGE_BUCKETS)
MODEL_INFO = Gauge("effort_model_info", "Loaded model version (value 1).", ["version"],
                   multiprocess_mode="max")
MODEL_CREATED = Gauge("effort_model_created_timestamp_seconds", "When the loaded model was "
                      "trained (its manifest's created_at), Unix time.", multiprocess_mode="min")
MODEL_LOADED = Gauge("effort_model_loaded_timestamp_seconds", "When the loaded model was loaded "
                     "by this process, Unix time.", multiprocess_mode="min")
MODEL_RELOAD_REFUSALS = Counter("effort_model_reload_refusals_total",
                                "Model folders (or CURRENT pointers) refused at start or reload, "
                                "by reason.", ["reason"])
EVENTS_TOTAL = Counter("effort_events_total", "Journey events received, by outcome.", ["outcome"])
INGESTION_LAG = Histogram("effort_ingestion_lag_seconds", "From an event's occurred_at to the "
                          "push of its customer's feature row to the online store "
                          "(RecordEvents, accepted events).", buckets=LAG_BUCKETS)
CALLS_IN_FLIGHT = Gauge("effort_calls_in_flight", "Admitted calls not yet answered "
                        "(health checks and reflection not counted).", multiprocess_mode="livesum")
SHED_TOTAL = Counter("effort_shed_total", "Calls refused with RESOURCE_EXHAUSTED by admission "
                     "control, by the limit that was reached.", ["reason"])
for _limit in ("in_flight", "deadline"):
    SHED_TOTAL.labels(reason=_limit)  # every series exists from the start, at 0
STORE_DATA_LOST = Gauge("effort_feature_store_data_lost", "1 while the feature store has lost its "
                        "data (its load marker is gone) and answers come from priors.",
                        multiprocess_mode="max")
AUTH_FAILURES_TOTAL = Counter("effort_auth_failures_total", "Calls refused UNAUTHENTICATED or "
                              "PERMISSION_DENIED before any work, by reason.", ["reason"])
for _reason in ("token_missing", "token_invalid", "token_expired", "scope_missing"):
    AUTH_FAILURES_TOTAL.labels(reason=_reason)
STORE_READ_SECONDS = Histogram("effort_feature_store_read_seconds", "Online feature store reads "
                               "(one per call, every customer of it), answered or not.",
                               buckets=STAGE_BUCKETS)
STORE_ERRORS_TOTAL = Counter("effort_feature_store_errors_total", "Online feature store reads "
                             "that failed, by kind.", ["kind"])
STORE_ERROR_KINDS = ("timeout", "unavailable", "circuit_open")
STORE_CIRCUIT_OPEN = Gauge("effort_feature_store_circuit_open", "1 while the feature store's "
                           "circuit breaker is open (reads answered from priors at once).",
                           multiprocess_mode="max")
SCORE_STAGE_SECONDS = Histogram("effort_score_stage_seconds", "Time per stage of scoring a call "
                                "(all its customers): feature_read, model_input, models (scores "
                                "and exact contributions), reasons, routing (rules, value at "
                                "risk, next best action).", ["stage"], buckets=STAGE_BUCKETS)
STAGES = ("feature_read", "model_input", "models", "reasons", "routing")
# Drift (service/drift.py), one series per process in multiprocess mode (each worker measures its
# own rows); NaN while a process has too few rows of its model, or no reference to compare with.
FEATURE_DRIFT_PSI = Gauge("effort_feature_drift_psi", "Population stability index of each model "
                          "input: the last effort_drift_window_rows scored rows against the "
                          "model's training reference (NaN until enough rows).", ["feature"],
                          multiprocess_mode="liveall")
SCORE_DRIFT_PSI = Gauge("effort_score_drift_psi", "Population stability index of each score "
                        "returned by the model (degraded answers excluded) against its training "
                        "reference (NaN until enough rows).", ["score"], multiprocess_mode="liveall")
DRIFT_WINDOW_ROWS = Gauge("effort_drift_window_rows", "Scored rows of the loaded model in the "
                          "drift window (at most its size).", multiprocess_mode="liveall")
PREDICTION_LOG_ROWS = Counter("effort_prediction_log_rows_total", "Rows written to the "
                              "prediction log's Parquet files (service/prediction_log.py).")
PREDICTION_LOG_DROPPED_TOTAL = Counter("effort_prediction_log_dropped_total", "Prediction log "
                                       "rows not written, by reason: queue_full (the writer's "
                                       "queue was full; the call did not wait), write_error.",
                                       ["reason"])
PREDICTION_LOG_DROP_REASONS = ("queue_full", "write_error")
# The shadow challenger (service/shadow.py): paired with the champion's answers off the call path.
SHADOW_INFO = Gauge("effort_shadow_info", "Loaded shadow challenger version (value 1; 0 once "
                    "dropped).", ["version"], multiprocess_mode="max")
SHADOW_TIER_AGREEMENT = Counter("effort_shadow_tier_agreement_total", "Answers the shadow "
                                "challenger also scored, by whether its tier equals the "
                                "champion's.", ["agreement"])
SHADOW_CHURN_RISK_DIFFERENCE = Histogram("effort_shadow_churn_risk_difference", "|challenger - "
                                         "champion| churn risk on the same answers.",
                                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,
                                                  0.2, 0.5, 1.0))
SHADOW_EFFORT_SCORE_DIFFERENCE = Histogram("effort_shadow_effort_score_difference",
                                           "|challenger - champion| effort score on the same "
                                           "answers.", buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20,
                                                                50, 100))
SHADOW_SECONDS = Histogram("effort_shadow_seconds", "Time the shadow challenger took per call "
                           "(its models and routing on the champion's model inputs), off the "
                           "call path.", buckets=STAGE_BUCKETS)
SHADOW_DROPPED = Counter("effort_shadow_dropped_total", "Calls not scored by the shadow "
                         "challenger because its queue was full (their answers are logged "
                         "without challenger scores).")
SHADOW_FAILURES = Counter("effort_shadow_failures_total", "Shadow passes the challenger's "
                          "process did not score: the pass it failed (it ended, did not answer in "
                          "time, or refused the folder) and those of the pause before a new one "
                          "starts; their answers are logged without challenger scores.")
SHADOW_REFUSALS = Counter("effort_shadow_refusals_total", "Shadow challengers (or SHADOW "
                          "pointers) refused at load, by reason (as "
                          "effort_model_reload_refusals_total).", ["reason"])
BUILD_INFO = Gauge("effort_build_info", "Effort's version and its main libraries' (value 1).",
                   ["version", "python", "grpcio", "lightgbm", "feast"], multiprocess_mode="max")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(version=_version("effort"), python=platform.python_version(),
                  grpcio=_version("grpcio"), lightgbm=_version("lightgbm"),
                  feast=_version("feast")).set(1)
for _agreement in ("same", "different"):
    SHADOW_TIER_AGREEMENT.labels(agreement=_agreement)
for _tier in ("standard", "senior"):
    TIER_TOTAL.labels(tier=_tier)
for _reason in DEGRADED_REASONS:
    DEGRADED_TOTAL.labels(reason=_reason)
for _outcome in ("accepted", "duplicate", "rejected"):
    EVENTS_TOTAL.labels(outcome=_outcome)
for _kind in STORE_ERROR_KINDS:
    STORE_ERRORS_TOTAL.labels(kind=_kind)
STAGE_TIMERS = {stage: SCORE_STAGE_SECONDS.labels(stage=stage) for stage in STAGES}
for _feature in MODEL_FEATURES:
    FEATURE_DRIFT_PSI.labels(feature=_feature).set(math.nan)
for _score in SCORES:
    SCORE_DRIFT_PSI.labels(score=_score).set(math.nan)
PREDICTION_LOG_DROPPED = {reason: PREDICTION_LOG_DROPPED_TOTAL.labels(reason=reason)
                          for reason in PREDICTION_LOG_DROP_REASONS}
