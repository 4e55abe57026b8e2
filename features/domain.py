"""Contact-center domain constants and formulas, each defined once for features, training and serving."""

import numpy as np

HOUR, DAY = 3600.0, 86400.0

# Channel enum numbers of effort.v1.Channel, and how a reason names them.
VOICE = 1
CHANNEL_NAMES = {1: "voice", 2: "chat", 3: "email", 4: "SMS", 5: "web", 6: "app", 7: "social"}

# complaint_state values, in order of the journey.
COMPLAINT_NONE, COMPLAINT_UNACKNOWLEDGED, COMPLAINT_ACKNOWLEDGED, COMPLAINT_RESOLVED = 0, 1, 2, 3
COMPLAINT_STATE_NAMES = {
    COMPLAINT_NONE: "no complaint",
    COMPLAINT_UNACKNOWLEDGED: "complaint not acknowledged",
    COMPLAINT_ACKNOWLEDGED: "complaint acknowledged, not resolved",
    COMPLAINT_RESOLVED: "complaint resolved",
}

# Sentiment below this marks a negative contact (negative_contacts_30d).
NEGATIVE_SENTIMENT = -0.3
# IVR steps this long before a voice contact belong to it; a self-service attempt this long
# before an assisted contact failed.
IVR_LOOKBACK_SECONDS = HOUR
SELF_SERVICE_FAIL_SECONDS = HOUR
# The same IVR menu again within this gap is a retry.
IVR_RETRY_GAP_SECONDS = 600.0

# The longest journey window: churn is a CHURN_HORIZON_DAYS outcome, so history this long counts.
LONG_WINDOW_DAYS = 90
# Half-lives (days) training chooses from for effort_events_decayed, and the one used before a
# model has chosen (stored feature rows; a model's choice is in its manifest).
EFFORT_HALF_LIFE_CHOICES_DAYS = (3.0, 7.0, 14.0, 30.0, 60.0)
DEFAULT_EFFORT_HALF_LIFE_DAYS = 14.0
# A contact within this long after the previous one repeats it (an effort event).
REPEAT_CONTACT_SECONDS = 7 * DAY
# A CES answer at or below this is a hard experience.
LOW_CES = 3

# Share of contacts routed to senior agents unless configured otherwise (senior-agent capacity).
SENIOR_SHARE = 0.15
# Churn label: the customer leaves within this many days after the contact.
CHURN_HORIZON_DAYS = 90


def ces_to_effort_score(ces: np.ndarray) -> np.ndarray:
    """Effort score from a CES 2.0 answer (1-7, 7 = easy): (7 - CES) / 6 x 100, clipped to 0-100."""
    return np.clip((7.0 - ces) / 6.0 * 100.0, 0.0, 100.0)


def effort_score_to_ces(effort_score: np.ndarray) -> np.ndarray:
    """The CES answer (1-7) an effort score stands for: the inverse of ces_to_effort_score,
    exact because the served score comes from a CES prediction clipped to 1-7."""
    return 7.0 - np.asarray(effort_score, dtype=np.float64) * 6.0 / 100.0
