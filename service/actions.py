"""The next best action: what an agent can do now, chosen by re-scoring the changed model input.

Each action changes one model input (acknowledging a complaint moves complaint_state from 1 to 2,
say). Every applicable action of every row is re-scored in one model call, and per row the largest
churn reduction wins if it saves at least MIN_ACTION_GAIN.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from features.domain import COMPLAINT_ACKNOWLEDGED, COMPLAINT_RESOLVED, COMPLAINT_UNACKNOWLEDGED
from service.models import ModelBundle

MIN_ACTION_GAIN = 0.005  # churn-risk points an action must save to be suggested


@dataclass(frozen=True)
class Action:
    """Something an agent can do now, as the change it makes to one model input (NaN: missing)."""

    code: str
    description: str
    feature: str
    applies: Callable[[float], bool]
    new_value: Callable[[float], float]


ACTIONS: tuple[Action, ...] = (
    Action("ACKNOWLEDGE_COMPLAINT", "acknowledge the open complaint now", "complaint_state",
           lambda v: v == COMPLAINT_UNACKNOWLEDGED, lambda v: COMPLAINT_ACKNOWLEDGED),
    Action("RESOLVE_COMPLAINT", "resolve the open complaint in this contact", "complaint_state",
           lambda v: v in (COMPLAINT_UNACKNOWLEDGED, COMPLAINT_ACKNOWLEDGED),
           lambda v: COMPLAINT_RESOLVED),
    Action("ANSWER_OPEN_EMAILS", "answer the customer's open emails", "emails_unanswered_30d",
           lambda v: v > 0, lambda v: 0.0),
    Action("PROACTIVE_FOLLOW_UP", "promise and send a proactive follow-up notice",
           "proactive_notices_7d", lambda v: True, lambda v: (0.0 if math.isnan(v) else v) + 1),
)


@dataclass(frozen=True)
class Suggestion:
    """The best action for one row and what the models expect after it."""

    action: Action
    churn_risk_after: float
    effort_score_after: float


class ActionPlanner:
    """The action catalogue bound to one model bundle: input positions resolved once."""

    def __init__(self, bundle: ModelBundle, actions: tuple[Action, ...] = ACTIONS) -> None:
        self._bundle = bundle
        position = {name: i for i, name in enumerate(bundle.feature_names)}
        self._actions = [(action, position[action.feature]) for action in actions
                         if action.feature in position]

    def best(self, matrix: np.ndarray, churn_now: np.ndarray,
             min_gain: float = MIN_ACTION_GAIN) -> list[Suggestion | None]:
        """Per row, the action that lowers the churn risk most, if it saves at least `min_gain`."""
        changed, owners, chosen = [], [], []
        for r, vector in enumerate(matrix):
            for action, k in self._actions:
                if action.applies(float(vector[k])):
                    row = vector.copy()
                    row[k] = action.new_value(float(vector[k]))
                    changed.append(row)
                    owners.append(r)
                    chosen.append(action)
        suggestions: list[Suggestion | None] = [None] * len(matrix)
        if not changed:
            return suggestions
        effort_after, churn_after = self._bundle.predict(np.array(changed))
        for j, r in enumerate(owners):
            best = suggestions[r]
            if churn_now[r] - churn_after[j] >= min_gain and (
                    best is None or churn_after[j] < best.churn_risk_after):
                suggestions[r] = Suggestion(chosen[j], float(churn_after[j]), float(effort_after[j]))
        return suggestions
