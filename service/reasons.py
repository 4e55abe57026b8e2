"""Reasons: the strongest drivers of a score as readable text, from exact TreeSHAP contributions."""

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from features.catalog import FEATURES_BY_NAME, MODEL_FEATURES, reason_description

MIN_CONTRIBUTION = {"effort": 0.05, "churn": 0.05}  # CES points / log-odds


class ScoreKind(Enum):
    """Which score a reason drives."""

    EFFORT = "effort"
    CHURN = "churn"
    ROUTING_RULE = "routing_rule"


@dataclass(frozen=True)
class Reason:
    """One driver of a score, readable by an agent."""

    code: str
    feature: str
    description: str
    contribution: float
    kind: ScoreKind


def choose_reasons(vector: np.ndarray, effort_contrib: np.ndarray, churn_contrib: np.ndarray,
                   limit: int, rule_reasons: list[Reason], require_one: bool) -> list[Reason]:
    """Strongest positive drivers of either score, one reason per feature, rule reasons first.

    Inputs are in MODEL_FEATURES order. Contributions below their model's reporting floor are
    left out, unless the contact goes senior (`require_one`) and no other reason explains it.
    """
    width = len(MODEL_FEATURES)
    candidates: list[tuple[float, float, ScoreKind, int]] = []
    for kind, contrib in ((ScoreKind.EFFORT, effort_contrib), (ScoreKind.CHURN, churn_contrib)):
        floor = MIN_CONTRIBUTION[kind.value]
        for position in np.flatnonzero(contrib[:width] > 0).tolist():
            if not math.isnan(vector[position]):
                value = float(contrib[position])
                # Scale-free ranking: each contribution relative to its model's reporting floor.
                candidates.append((value / floor, value, kind, position))
    candidates.sort(key=lambda c: -c[0])
    reasons = list(rule_reasons)
    seen = {r.feature for r in reasons}
    for strength, contribution, kind, k in candidates:
        if len(reasons) >= limit:
            break
        name = MODEL_FEATURES[k]
        if name in seen or (strength < 1.0 and (reasons or not require_one)):
            continue
        seen.add(name)
        spec = FEATURES_BY_NAME[name]  # descriptions are written for the chosen few only
        reasons.append(Reason(spec.reason_code, name, reason_description(spec, float(vector[k])),
                              contribution, kind))
    return reasons
