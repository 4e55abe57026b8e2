"""The journey and request features (docs/features.md): names, types, definitions and reason texts."""

from dataclasses import dataclass
from typing import Literal

from features.domain import CHANNEL_NAMES, COMPLAINT_STATE_NAMES

# The feature set's version. A new feature set gets new Feast objects and a fresh aggregation
# state beside the old ones (no store is rewritten in place); the server refuses models trained on
# another feature service (service/models.py).
FEATURE_SET_VERSION = 2
# Names of the Feast objects (features/feast_repo/definitions.py) that application code refers to.
FEATURE_SERVICE_NAME = f"effort_journey_v{FEATURE_SET_VERSION}"
FEATURE_VIEW_NAME = f"customer_journey_v{FEATURE_SET_VERSION}"
PUSH_SOURCE_NAME = f"journey_push_v{FEATURE_SET_VERSION}"
FILE_SOURCE_NAME = f"journey_features_v{FEATURE_SET_VERSION}_file"
ENTITY_NAME = "customer"
JOIN_KEY = "customer_id"
TIMESTAMP_FIELD = "event_timestamp"
WINDOW_STATE_FIELD = "window_state"
# A folder of Parquet parts, relative to the repo path.
OFFLINE_PATH = f"data/journey_features_v{FEATURE_SET_VERSION}"
# The aggregation state's SQLite file under data/ of the repo path, and its Redis key prefix.
STATE_NAME = f"journey_state_v{FEATURE_SET_VERSION}"


@dataclass(frozen=True)
class FeatureSpec:
    """One journey feature: its contract name, type, definition and how a reason reads."""

    name: str
    dtype: Literal["int", "float"]
    definition: str
    research: str
    reason_code: str
    # str.format template; {value} is the customer's value, {label} its name where it has one.
    reason_text: str

    @property
    def description(self) -> str:
        """Feast description: the definition, then why the feature matters."""
        return f"{self.definition} Why: {self.research}"


_FCR = "a first contact that does not solve the problem is the worst reported experience"
_SWITCH = "Gartner lists channel switching and repeating information as top effort drivers"
_IVR = "IVR design that keeps customers from people drives dissatisfaction"
_WAIT = "speed is among customers' top three concerns"
_COMPLAINT = "retention is under 10% when a complaint is unacknowledged, 54% when resolved"
_LONG = "churn is a 90-day outcome: effort weeks ago still moves it"
_CES = "a high-effort experience makes customers far more likely to leave (CES 2.0)"

JOURNEY_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("contacts_24h", "int", "Inbound contacts (EVENT_TYPE_CONTACT) in the 24 hours "
                "before scoring.", _FCR, "REPEAT_CONTACTS_24H", "{value} contacts in the last 24 hours"),
    FeatureSpec("contacts_7d", "int", "Inbound contacts in the 7 days before scoring.", _FCR,
                "REPEAT_CONTACTS", "{value} contacts in the last 7 days"),
    FeatureSpec("contacts_30d", "int", "Inbound contacts in the 30 days before scoring.", _FCR,
                "FREQUENT_CONTACTS", "{value} contacts in the last 30 days"),
    FeatureSpec("repeat_same_intent_7d", "int", "Contacts in 7 days whose intent repeats an "
                "earlier contact's intent in those 7 days.", _FCR, "REPEAT_SAME_ISSUE",
                "contacted {value} more times about the same issue in 7 days"),
    FeatureSpec("distinct_channels_7d", "int", "Distinct channels among the 7-day contacts.",
                _SWITCH, "MANY_CHANNELS", "used {value} different channels in 7 days"),
    FeatureSpec("channel_switches_7d", "int", "Consecutive 7-day contacts on a different channel "
                "than the one before.", _SWITCH, "CHANNEL_SWITCHING",
                "switched channels {value} times in 7 days"),
    FeatureSpec("self_service_fail_7d", "int", "Web/app self-service attempts in 7 days followed "
                "by an assisted contact within an hour.", "60% prefer automation for simple tasks "
                "as long as a person can be reached", "FAILED_SELF_SERVICE",
                "self-service failed {value} times in 7 days"),
    FeatureSpec("ivr_steps_last", "int", "IVR menu steps in the hour up to the latest voice "
                "contact.", _IVR, "LONG_IVR_PATH", "went through {value} IVR steps last call"),
    FeatureSpec("ivr_retries_7d", "int", "IVR steps in 7 days that repeat the previous step's menu "
                "within 10 minutes.", _IVR, "IVR_RETRIES", "repeated IVR menus {value} times in 7 days"),
    FeatureSpec("ivr_zero_out_7d", "int", "IVR zero-outs (asking for an agent) in 7 days.", _IVR,
                "IVR_ZERO_OUT", "pressed 0 to escape the IVR {value} times in 7 days"),
    FeatureSpec("wait_seconds_avg_7d", "float", "Mean queue wait of the 7-day contacts, seconds; "
                "missing when there were none.", _WAIT, "LONG_WAITS",
                "waited {value:.0f} s on average in 7 days"),
    FeatureSpec("wait_seconds_max_7d", "float", "Longest queue wait of the 7-day contacts and "
                "abandons, seconds; missing when there were none.", _WAIT, "LONGEST_WAIT",
                "waited up to {value:.0f} s in 7 days"),
    FeatureSpec("abandoned_7d", "int", "Abandoned calls or chats in 7 days.", _WAIT,
                "ABANDONED_CONTACTS", "gave up waiting {value} times in 7 days"),
    FeatureSpec("transfers_7d", "int", "Transfers (EVENT_TYPE_TRANSFER) in 7 days.",
                "transfers are a known high-effort marker", "TRANSFERS",
                "transferred {value} times in 7 days"),
    FeatureSpec("transfers_last", "int", "Transfers since the latest contact began.",
                "transfers are a known high-effort marker", "TRANSFERRED_LAST_CONTACT",
                "transferred {value} times in the last contact"),
    FeatureSpec("emails_unanswered_30d", "int", "Emails received in 30 days with no answer yet "
                "(answers match the oldest open email first).", "44% of emails were never answered",
                "UNANSWERED_EMAILS", "{value} emails in 30 days still unanswered"),
    FeatureSpec("complaint_state", "int", "State of the latest complaint: 0 none, "
                "1 unacknowledged, 2 acknowledged not resolved, 3 resolved.", _COMPLAINT,
                "COMPLAINT_STATE", "{label}"),
    FeatureSpec("complaint_age_days", "float", "Days since the latest complaint was opened; "
                "missing when there is none.", _COMPLAINT, "COMPLAINT_AGE",
                "complaint opened {value:.0f} days ago"),
    FeatureSpec("sentiment_last", "float", "Sentiment (-1 to 1) of the latest contact or survey "
                "that carried one; missing when none did.", "speech/text analytics locate frustration",
                "NEGATIVE_SENTIMENT", "last sentiment {value:+.2f}"),
    FeatureSpec("negative_contacts_30d", "int", "Contacts in 30 days with sentiment below -0.3.",
                "speech/text analytics locate frustration", "NEGATIVE_CONTACTS",
                "{value} negative contacts in 30 days"),
    FeatureSpec("proactive_notices_7d", "int", "Proactive notices sent in 7 days.", "proactive "
                "notices prevent inbound calls", "PROACTIVE_NOTICES",
                "{value} proactive notices in 7 days"),
    FeatureSpec("tenure_days", "float", "Days since the relationship began (latest profile "
                "update); missing when unknown.", "replacing a lost customer costs $200 to "
                "$10,000", "TENURE", "customer for {value:.0f} days"),
    FeatureSpec("customer_value", "float", "Customer value per year from the latest profile "
                "update; missing when unknown.", "replacing a lost customer costs $200 to "
                "$10,000", "CUSTOMER_VALUE", "customer value {value:,.0f} per year"),
    FeatureSpec("hours_since_last_contact", "float", "Hours from the latest contact to scoring; "
                "missing when there was none.", "recent contacts signal an open issue",
                "RECENT_CONTACT", "last contact {value:.1f} hours ago"),
    FeatureSpec("contacts_60d", "int", "Inbound contacts in the 60 days before scoring.", _LONG,
                "CONTACTS_60D", "{value} contacts in the last 60 days"),
    FeatureSpec("contacts_90d", "int", "Inbound contacts in the 90 days before scoring.", _LONG,
                "CONTACTS_90D", "{value} contacts in the last 90 days"),
    FeatureSpec("transfers_90d", "int", "Transfers in the 90 days before scoring.", _LONG,
                "TRANSFERS_90D", "transferred {value} times in 90 days"),
    FeatureSpec("abandoned_90d", "int", "Abandoned calls or chats in 90 days.", _LONG,
                "ABANDONED_90D", "gave up waiting {value} times in 90 days"),
    FeatureSpec("complaints_90d", "int", "Complaints opened in 90 days.", _COMPLAINT,
                "COMPLAINTS_90D", "{value} complaints in 90 days"),
    FeatureSpec("negative_contacts_90d", "int", "Contacts in 90 days with sentiment below -0.3.",
                _LONG, "NEGATIVE_CONTACTS_90D", "{value} negative contacts in 90 days"),
    FeatureSpec("ces_mean_90d", "float", "Mean CES answer (1-7, 7 easy) of the surveys received "
                "in 90 days; missing when there were none.", _CES, "LOW_CES_ANSWERS",
                "rated past contacts {value:.1f} of 7 on average"),
    FeatureSpec("low_ces_90d", "int", "Survey answers of CES 3 or lower in 90 days.", _CES,
                "HARD_EXPERIENCES", "rated {value} contacts hard in 90 days"),
    FeatureSpec("effort_events_decayed", "float", "Effort events in 90 days (transfers, "
                "abandons, IVR zero-outs, complaints, negative contacts, contacts repeating one "
                "within 7 days), each weighed 0.5 ^ (age in days / half-life); the half-life is "
                "chosen in training (the model's manifest) from 3, 7, 14, 30 and 60 days.", _LONG,
                "RECENT_EFFORT", "{value:.1f} recency-weighted effort events"),
)

# Request-time context: what the routing system says about the arriving contact. In training they
# come from the customer's contact recorded at the label's time (see features/model_input.py).
REQUEST_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("request_channel", "int", "Channel of the arriving contact (Channel enum number); "
                "missing when not given.", _SWITCH, "CONTACT_CHANNEL", "contacting by {label}"),
    FeatureSpec("request_queue_wait_seconds", "float", "Seconds waited in queue so far in the "
                "arriving contact.", _WAIT, "WAITING_NOW", "has waited {value:.0f} s in this contact"),
    FeatureSpec("request_ivr_steps", "int", "IVR steps so far in the arriving contact.", _IVR,
                "IVR_STEPS_NOW", "went through {value} IVR steps in this contact"),
    FeatureSpec("request_repeat_intent_7d", "int", "Recorded contacts with the arriving "
                "contact's intent in the 7 days up to scoring, the arriving one included once "
                "recorded; missing when the intent is unknown.", _FCR, "SAME_ISSUE_AGAIN",
                "contacted {value} times about this issue in the last 7 days"),
)

# Effort drivers the research names (docs/features.md): more of any of them can only mean more
# effort, so the effort model is constrained to be monotone in them (training/train.py).
EFFORT_DRIVERS: tuple[str, ...] = (
    "contacts_24h", "contacts_7d", "contacts_30d", "repeat_same_intent_7d", "distinct_channels_7d",
    "channel_switches_7d", "self_service_fail_7d", "ivr_retries_7d", "ivr_zero_out_7d",
    "abandoned_7d", "transfers_7d", "transfers_last", "emails_unanswered_30d")

FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in JOURNEY_FEATURES)
REQUEST_FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in REQUEST_FEATURES)
# Model inputs, in this order: stored journey features, then request-time context.
MODEL_FEATURES: tuple[str, ...] = FEATURE_NAMES + REQUEST_FEATURE_NAMES
FEATURES_BY_NAME: dict[str, FeatureSpec] = {
    spec.name: spec for spec in (*JOURNEY_FEATURES, *REQUEST_FEATURES)}


_VALUE_LABELS = {"complaint_state": COMPLAINT_STATE_NAMES, "request_channel": CHANNEL_NAMES}


def reason_description(spec: FeatureSpec, value: float | None) -> str:
    """The reason text of a feature for the customer's own value."""
    if value is None or value != value:  # NaN: the customer has no value for this feature
        return f"{spec.name} unknown"
    shown: float | int = int(value) if spec.dtype == "int" else value
    labels = _VALUE_LABELS.get(spec.name, {})
    return spec.reason_text.format(value=shown, label=labels.get(int(value), shown))
