"""Effort's domain metrics (effort_*); the standard grpc_server_* ones come from py-async-grpc-prometheus."""

from prometheus_client import Counter, Gauge, Histogram

SCORE_BUCKETS = tuple(float(b) for b in range(0, 101, 10))
RISK_BUCKETS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
AGE_BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)

EFFORT_SCORE = Histogram("effort_effort_score", "Customer-effort scores returned (0-100).",
                         buckets=SCORE_BUCKETS)
CHURN_RISK = Histogram("effort_churn_risk", "Churn risks returned (0-1).", buckets=RISK_BUCKETS)
TIER_TOTAL = Counter("effort_tier_total", "Scores returned by routing tier.", ["tier"])
DEGRADED_TOTAL = Counter("effort_degraded_total", "Answers that fell back to priors, by reason.",
                         ["reason"])
UNKNOWN_CUSTOMER_TOTAL = Counter("effort_unknown_customer_total",
                                 "Scores for customers with no stored journey (scored from an "
                                 "empty history plus the request context).")
FEATURE_AGE = Histogram("effort_feature_age_seconds", "Age of the feature values used for scoring.",
                        buckets=AGE_BUCKETS)
MODEL_INFO = Gauge("effort_model_info", "Loaded model version (value 1).", ["version"],
                   multiprocess_mode="max")
MODEL_RELOAD_REFUSALS = Counter("effort_model_reload_refusals_total",
                                "Model folders (or CURRENT pointers) refused at start or reload, "
                                "by reason.", ["reason"])
EVENTS_TOTAL = Counter("effort_events_total", "Journey events received, by outcome.", ["outcome"])
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
