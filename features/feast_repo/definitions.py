"""Feast objects for Effort: the customer entity, the journey push source, view and service."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, Int64, String

from features.catalog import (
    ENTITY_NAME,
    FEATURE_SERVICE_NAME,
    FEATURE_SET_VERSION,
    FEATURE_VIEW_NAME,
    FILE_SOURCE_NAME,
    JOIN_KEY,
    JOURNEY_FEATURES,
    OFFLINE_PATH,
    PUSH_SOURCE_NAME,
    TIMESTAMP_FIELD,
    WINDOW_STATE_FIELD,
)

# A contact-center customer, keyed by the CRM's customer id ("C000001").
customer = Entity(
    name=ENTITY_NAME,
    join_keys=[JOIN_KEY],
    value_type=ValueType.STRING,
    description="A contact-center customer, keyed by the CRM customer id.",
)

# Offline history of journey feature rows: a backfill part plus one part per live push.
journey_file = FileSource(
    name=FILE_SOURCE_NAME,
    path=OFFLINE_PATH,
    timestamp_field=TIMESTAMP_FIELD,
    description="Journey feature rows as computed at each event (folder of Parquet parts).",
)

# Real-time entry: the aggregator pushes a fresh row whenever a customer's events change.
journey_push = PushSource(
    name=PUSH_SOURCE_NAME,
    batch_source=journey_file,
    description="Journey feature rows pushed by Effort's event aggregator.",
)

# The journey features (features/catalog.py, docs/features.md), one row per customer.
customer_journey = FeatureView(
    name=FEATURE_VIEW_NAME,
    entities=[customer],
    ttl=timedelta(days=365),
    schema=[
        *(Field(name=spec.name, dtype=Int64 if spec.dtype == "int" else Float64,
                description=spec.description) for spec in JOURNEY_FEATURES),
        Field(name=WINDOW_STATE_FIELD, dtype=String,
              description="Compacted recent events (features/window_state.py); serving and "
              "training recompute the windowed features from it at the moment of scoring."),
    ],
    source=journey_push,
    online=True,
    description="Customer journey features from contact-center events.",
)

# Versioned feature service shared by training and serving; a new feature set gets a new version
# (features/catalog.py FEATURE_SET_VERSION) and new objects beside the old ones.
effort_journey = FeatureService(
    name=FEATURE_SERVICE_NAME,
    features=[customer_journey],
    description=f"Features of Effort's effort and churn models, version {FEATURE_SET_VERSION}.",
)

FEAST_OBJECTS = [customer, journey_file, journey_push, customer_journey, effort_journey]
