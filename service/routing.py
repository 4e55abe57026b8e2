"""The routing decision: thresholds, rule overrides and value at risk.

Configured without code changes by a JSON file named in EFFORT_ROUTING_POLICY, for example:

    {"senior_share": 0.10,
     "rules": [{"code": "UNACKNOWLEDGED_COMPLAINT", "feature": "complaint_state", "op": "==",
                "value": 1, "description": "complaint not acknowledged"}],
     "value_at_risk_senior": 2000}

senior_share picks thresholds from the model's table (fitted at training for shares 1-50%), so
the senior queue can follow today's senior-agent capacity; rules send a contact senior whatever
the scores; value_at_risk_senior sends senior every contact whose churn risk x customer value
reaches it. Without a file: the model's own thresholds and the unacknowledged-complaint rule.
`next_best_action` turns the re-scored suggestion (service/actions.py) on or off.
"""

import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from features.domain import COMPLAINT_UNACKNOWLEDGED
from service.models import ModelBundle, Thresholds
from service.reasons import Reason, ScoreKind

# Applied to one value (decide) and to a column of rows (seniors).
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge, ">": operator.gt, "<=": operator.le,
    "<": operator.lt}


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
        share = self.senior_share
        if share is None or not bundle.threshold_table:
            return bundle.thresholds
        return min(bundle.threshold_table, key=lambda entry: abs(entry[0] - share))[1]


@dataclass(frozen=True)
class Decision:
    """The tier of one contact and the routing reasons behind it (rules, value at risk)."""

    senior: bool
    value_at_risk: float
    rule_reasons: list[Reason]


class Router:
    """A routing policy bound to one model bundle: thresholds and input positions resolved once."""

    def __init__(self, policy: RoutingPolicy, bundle: ModelBundle) -> None:
        self.thresholds = policy.thresholds(bundle)
        position = {name: i for i, name in enumerate(bundle.feature_names)}
        self._rules = [(rule, position[rule.feature], _OPS[rule.op]) for rule in policy.rules
                       if rule.feature in position]
        self._value_position = position.get("customer_value")
        self._value_at_risk_senior = policy.value_at_risk_senior

    def decide(self, vector: np.ndarray, effort: float, churn: float) -> Decision:
        """Senior when either score reaches its threshold, a rule fires (a missing value never
        fires) or the value at risk (churn risk x customer value) reaches the policy's bar."""
        reasons = [Reason(rule.code, rule.feature, rule.description, 0.0, ScoreKind.ROUTING_RULE)
                   for rule, k, compare in self._rules
                   if not math.isnan(vector[k]) and compare(float(vector[k]), rule.value)]
        value = math.nan if self._value_position is None else float(vector[self._value_position])
        value_at_risk = 0.0 if math.isnan(value) else churn * value
        at_risk = (self._value_at_risk_senior is not None
                   and value_at_risk >= self._value_at_risk_senior)
        if at_risk:
            reasons.append(Reason("VALUE_AT_RISK", "customer_value",
                                  f"{value_at_risk:,.0f} per year at risk", 0.0,
                                  ScoreKind.ROUTING_RULE))
        senior = (effort >= self.thresholds.effort_score or churn >= self.thresholds.churn_risk
                  or bool(reasons))
        return Decision(senior, value_at_risk, reasons)

    def seniors(self, matrix: np.ndarray, effort: np.ndarray, churn: np.ndarray) -> np.ndarray:
        """The tier `decide` gives each row (True is senior), for many rows at once: the shadow
        challenger needs the tiers only, and a pass of them holds the interpreter lock briefly."""
        senior = (effort >= self.thresholds.effort_score) | (churn >= self.thresholds.churn_risk)
        for rule, k, compare in self._rules:
            column = matrix[:, k]
            senior |= ~np.isnan(column) & compare(column, rule.value)
        if self._value_at_risk_senior is not None and self._value_position is not None:
            value = matrix[:, self._value_position]
            senior |= ~np.isnan(value) & (churn * value >= self._value_at_risk_senior)
        return np.asarray(senior, dtype=bool)
