"""The routing decision: thresholds, rule overrides, value at risk and the next best action.

Configured without code changes by a JSON file named in EFFORT_ROUTING_POLICY, for example:

    {"senior_share": 0.10,
     "rules": [{"code": "UNACKNOWLEDGED_COMPLAINT", "feature": "complaint_state", "op": "==",
                "value": 1, "description": "complaint not acknowledged"}],
     "value_at_risk_senior": 2000}

senior_share picks thresholds from the model's table (fitted at training for shares 1-50%), so
the senior queue can follow today's senior-agent capacity; rules send a contact senior whatever
the scores; value_at_risk_senior sends senior every contact whose churn risk x customer value
reaches it. Without a file: the model's own thresholds and the unacknowledged-complaint rule.
"""

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from features.catalog import COMPLAINT_ACKNOWLEDGED, COMPLAINT_RESOLVED, COMPLAINT_UNACKNOWLEDGED
from service.model_bundle import ModelBundle, Thresholds

_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge, ">": operator.gt, "<=": operator.le,
    "<": operator.lt}
MIN_ACTION_GAIN = 0.005  # churn-risk points an action must save to be suggested


class Rule(BaseModel):
    """Send a contact senior when a model input compares true with a value."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    feature: str
    op: Literal["==", "!=", ">=", ">", "<=", "<"]
    value: float
    description: str


class RoutingPolicy(BaseModel):
    """Operator-editable routing configuration."""

    senior_share: float | None = Field(None, gt=0, lt=1)
    rules: list[Rule] = Field(default_factory=lambda: [Rule(
        code="UNACKNOWLEDGED_COMPLAINT", feature="complaint_state", op="==",
        value=COMPLAINT_UNACKNOWLEDGED,
        description="complaint not acknowledged: routing rule sends the contact senior")])
    value_at_risk_senior: float | None = Field(None, gt=0)
    next_best_action: bool = True

    @classmethod
    def load(cls, path: Path | None) -> "RoutingPolicy":
        """The policy in a JSON file, or the default one."""
        return cls() if path is None else cls.model_validate(json.loads(path.read_text()))

    def thresholds(self, bundle: ModelBundle) -> Thresholds:
        """The model's thresholds, or those of its table nearest the configured share."""
        table = bundle.manifest.get("threshold_table") or []
        if self.senior_share is None or not table:
            return bundle.thresholds
        entry = min(table, key=lambda e: abs(e["share"] - self.senior_share))
        return Thresholds(entry["effort_score"], entry["churn_risk"])

    def fired(self, names: Sequence[str], vector: np.ndarray) -> list[Rule]:
        """The rules whose condition holds for this row (a missing value never fires)."""
        position = {name: i for i, name in enumerate(names)}
        return [rule for rule in self.rules if rule.feature in position
                and not np.isnan(vector[position[rule.feature]])
                and _OPS[rule.op](float(vector[position[rule.feature]]), rule.value)]


@dataclass(frozen=True)
class Action:
    """Something an agent can do now, as the change it makes to the model inputs."""

    code: str
    description: str
    applies: Callable[[dict[str, float]], bool]
    change: Callable[[dict[str, float]], dict[str, float]]


ACTIONS: tuple[Action, ...] = (
    Action("ACKNOWLEDGE_COMPLAINT", "acknowledge the open complaint now",
           lambda f: f.get("complaint_state") == COMPLAINT_UNACKNOWLEDGED,
           lambda f: {"complaint_state": COMPLAINT_ACKNOWLEDGED}),
    Action("RESOLVE_COMPLAINT", "resolve the open complaint in this contact",
           lambda f: f.get("complaint_state") in (COMPLAINT_UNACKNOWLEDGED, COMPLAINT_ACKNOWLEDGED),
           lambda f: {"complaint_state": COMPLAINT_RESOLVED}),
    Action("ANSWER_OPEN_EMAILS", "answer the customer's open emails",
           lambda f: f.get("emails_unanswered_30d", 0) > 0,
           lambda f: {"emails_unanswered_30d": 0.0}),
    Action("PROACTIVE_FOLLOW_UP", "promise and send a proactive follow-up notice",
           lambda f: True,
           lambda f: {"proactive_notices_7d": f.get("proactive_notices_7d", 0.0) + 1}),
)


@dataclass(frozen=True)
class Suggestion:
    """The best action for one row and what the models expect after it."""

    action: Action
    churn_risk_after: float
    effort_score_after: float


def next_best_action(bundle: ModelBundle, names: Sequence[str], vector: np.ndarray,
                     churn_now: float, min_gain: float = MIN_ACTION_GAIN) -> Suggestion | None:
    """The best action for one row; see next_best_actions."""
    return next_best_actions(bundle, names, vector[np.newaxis, :], np.array([churn_now]),
                             min_gain)[0]


def next_best_actions(bundle: ModelBundle, names: Sequence[str], matrix: np.ndarray,
                      churn_now: np.ndarray, min_gain: float = MIN_ACTION_GAIN,
                      ) -> list[Suggestion | None]:
    """Re-scores each row once per applicable action, all rows in one model call; per row the
    largest churn reduction wins, if it saves at least `min_gain`."""
    position = {name: i for i, name in enumerate(names)}
    changed, owners, actions = [], [], []
    for r, vector in enumerate(matrix):
        values = {name: float(v) for name, v in zip(names, vector, strict=True) if not np.isnan(v)}
        for action in ACTIONS:
            if not action.applies(values):
                continue
            row = vector.copy()
            for feature, value in action.change(values).items():
                row[position[feature]] = value
            changed.append(row)
            owners.append(r)
            actions.append(action)
    suggestions: list[Suggestion | None] = [None] * len(matrix)
    if not changed:
        return suggestions
    effort_after, churn_after = bundle.predict(np.array(changed))
    for k, r in enumerate(owners):
        best = suggestions[r]
        if churn_now[r] - churn_after[k] >= min_gain and (
                best is None or churn_after[k] < best.churn_risk_after):
            suggestions[r] = Suggestion(actions[k], float(churn_after[k]), float(effort_after[k]))
    return suggestions
