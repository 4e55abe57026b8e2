"""Where the churn model's headroom is lost on SYNTHETIC data: in the features, or in learning.

Reads a finished `bench/live_quality.py` folder (its training and live events and labels, the
live rows it scored and the model it promoted) and rebuilds every row's model input from the
events (features/model_input.py, the same code as serving; the promoted model's live ROC-AUC is
reproduced as a check). On the live rows it then compares, each ROC-AUC beside the headroom
share it would capture between today's rule and the truth:

- learnt: a churn model fitted as `effort train` fits it (training/tuning.py) on the training
  rows' churn labels: what the deployed model reaches.
- features' ceiling: LightGBM fitted to the simulator's true log-odds instead of the noisy 0/1
  labels (possible on synthetic data only): how much of the truth the features can express.
- learning's ceiling: the tuned churn model with the truth as its only input: how much a model
  learnt from these labels keeps of a perfect feature at this training size.
- each again with candidate long-memory features (7-day peaks over 90 days, unacknowledged
  complaint days, 180-day counts), to judge a feature set v3 before building it.

With `--diagnostics`, two questions more:
- the learning curve: the learnt model on 40, 60 and 80% of the training customers;
- past issues' own churn chances: the simulator's churn chance at each contact of the last 60
  days (training/simulate.py, from the features then), summed with the share of the 1-60-day
  churn delay still to come, and the largest, as the only inputs and beside v2: what the most
  specific "past episodes" feature could give, as an upper bound for peak features.

Command: `.venv/bin/python bench/quality_ceiling.py var/quality/seed11c` (about 30 s; a minute
more with --diagnostics).
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from live_quality import by_customer, journey_until, parse_labels

from features.catalog import MODEL_FEATURES
from features.domain import CHURN_HORIZON_DAYS, DAY
from features.event_files import read_events
from features.events import ET, Event
from features.model_input import input_vector, recorded_contact
from training.evaluate import roc_auc_or_nan
from training.registry import current_folder
from training.simulate import CHURN_DELAY_DAYS, decision_churn_chance
from training.train import base_params, split_by_customer
from training.tuning import FOLDS, customer_groups, tune

CANDIDATES = ("peak_contacts_7d_90d", "peak_effort_7d_90d", "unacknowledged_complaint_days_60d",
              "contacts_180d", "contact_episodes_180d")
_EFFORT_TYPES = frozenset({ET.EVENT_TYPE_TRANSFER, ET.EVENT_TYPE_ABANDON,
                           ET.EVENT_TYPE_IVR_ZERO_OUT, ET.EVENT_TYPE_COMPLAINT_OPENED})
_ACKNOWLEDGING = frozenset({ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED, ET.EVENT_TYPE_COMPLAINT_RESOLVED})
DISTILL_PARAMS = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 31,
                  "min_data_in_leaf": 50, "deterministic": True, "force_row_wise": True,
                  "num_threads": 2, "verbosity": -1, "seed": 7}
DISTILL_ROUNDS = 600
CURVE_SHARES = (0.4, 0.6, 0.8)


def events_by_customer(path: Path) -> dict[str, list[Event]]:
    """Each customer's valid events in time order."""
    return by_customer([event for event in read_events(path) if isinstance(event, Event)])


def inputs_and_candidates(events: dict[str, list[Event]], customers: Sequence[str],
                          moments: np.ndarray, half_life_days: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per (customer, moment): the model input as serving builds it, and CANDIDATES."""
    inputs = np.empty((len(customers), len(MODEL_FEATURES)))
    candidates = np.zeros((len(customers), len(CANDIDATES)))
    for i, (customer, at) in enumerate(zip(customers, moments, strict=True)):
        known = journey_until(events.get(customer, []), at)
        input_vector(known, at, recorded_contact(known, at), inputs[i], half_life_days)
        candidates[i] = candidate_features(known, at)
    return inputs, candidates


def _peak_7d(stamps: np.ndarray, anchors: np.ndarray) -> int:
    """The largest count of `stamps` in a 7-day window ending at one of `anchors`."""
    if not len(stamps) or not len(anchors):
        return 0
    stamps = np.sort(stamps)
    counts = (np.searchsorted(stamps, anchors, "right")
              - np.searchsorted(stamps, anchors - 7 * DAY, "right"))
    return int(counts.max())


def candidate_features(known: Sequence[Event], at: float) -> tuple[float, ...]:
    """CANDIDATES at `at` from the events known then, in time order."""
    contacts = np.array([e.occurred_at for e in known if e.type == ET.EVENT_TYPE_CONTACT])
    effort = np.array([e.occurred_at for e in known if e.type in _EFFORT_TYPES])
    anchors = np.concatenate([contacts, effort])
    anchors = anchors[anchors > at - 90 * DAY]
    unacknowledged, opened = 0.0, None
    for event in known:
        if event.type == ET.EVENT_TYPE_COMPLAINT_OPENED:
            opened = event.occurred_at
        elif event.type in _ACKNOWLEDGING and opened is not None:
            unacknowledged += max(0.0, event.occurred_at - max(opened, at - 60 * DAY))
            opened = None
    if opened is not None:
        unacknowledged += at - max(opened, at - 60 * DAY)
    recent = contacts[contacts > at - 180 * DAY]
    episodes = 0 if not len(recent) else 1 + int((np.diff(recent) > 7 * DAY).sum())
    return (_peak_7d(contacts, anchors), _peak_7d(np.concatenate([contacts, effort]), anchors),
            unacknowledged / DAY, len(recent), episodes)


def past_issue_chances(known: Sequence[Event], at: float) -> tuple[float, float]:
    """The simulator's churn chance at each contact of the last 60 days (SYNTHETIC only): summed
    with the share of the churn delay still to come, and the largest."""
    low, high = CHURN_DELAY_DAYS
    weighted, largest = 0.0, 0.0
    for position, event in enumerate(known):
        if event.type != ET.EVENT_TYPE_CONTACT or event.occurred_at <= at - high * DAY:
            continue
        chance = decision_churn_chance(list(known[:position + 1]), event.occurred_at)
        still_to_come = (high - (at - event.occurred_at) / DAY) / (high - low)
        weighted += chance * min(1.0, max(0.0, still_to_come))
        largest = max(largest, chance)
    return weighted, largest


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def learnt(x: np.ndarray, y: np.ndarray, groups: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Live scores of a churn model tuned and fitted as `effort train` does."""
    names = [f"input_{j}" for j in range(x.shape[1])]
    tuned = tune(base_params("binary", 7, {}), x, y, names, groups, 7)
    model = lgb.train(tuned.params, lgb.Dataset(x, y, feature_name=names),
                      num_boost_round=tuned.rounds)
    return np.asarray(model.predict(live))


def distilled(x: np.ndarray, true_logit: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Live scores of LightGBM fitted to the true log-odds: what the inputs can express."""
    model = lgb.train(DISTILL_PARAMS, lgb.Dataset(x, true_logit), num_boost_round=DISTILL_ROUNDS)
    return np.asarray(model.predict(live))


def _print(name: str, auc: float, headroom: tuple[float, float]) -> float:
    rule, truth = headroom
    print(f"  {name:46s} ROC-AUC {auc:.4f}   headroom {(auc - rule) / (truth - rule):.0%}",
          flush=True)
    return auc


def learning_curve(x: np.ndarray, y: np.ndarray, groups: np.ndarray, customers: np.ndarray,
                   live: np.ndarray, y_live: np.ndarray, headroom: tuple[float, float],
                   step: Callable[[str], None]) -> dict[str, float]:
    """The learnt model on CURVE_SHARES of the training customers (chosen by a stable hash)."""
    bucket = customer_groups(customers.tolist(), 100, salt="curve")
    figures = {}
    for share in CURVE_SHARES:
        kept = bucket < round(share * 100)
        name = f"learnt, v2, {share:.0%} of the customers ({kept.sum():,} rows)"
        step(name)
        figures[name] = _print(name, roc_auc_or_nan(
            y_live, learnt(x[kept], y[kept], groups[kept], live)), headroom)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a finished bench/live_quality.py --out folder")
    parser.add_argument("--diagnostics", action="store_true",
                        help="also the learning curve and past issues' own churn chances")
    args = parser.parse_args()
    folder: Path = args.folder
    model = current_folder(folder / "models")
    half_life = float(json.loads((model / "manifest.json").read_text())["effort_half_life_days"])

    def step(what: str) -> None:
        print(f"  {what}", file=sys.stderr, flush=True)

    step("reading the training rows")
    labels = parse_labels(pd.read_csv(folder / "train" / "labels.csv", dtype=str,
                                      keep_default_na=False))
    labels = labels[labels["churned"].notna() & (labels["at"] <= labels["at"].max()
                                                 - CHURN_HORIZON_DAYS * DAY)]
    labels = labels.reset_index(drop=True)
    customers = labels["customer_id"].tolist()
    trained, _ = split_by_customer(np.ones(len(labels), dtype=bool), customers)
    groups = customer_groups(customers, FOLDS)[trained]
    train_events = events_by_customer(folder / "train" / "events.jsonl")
    x_all, c_all = inputs_and_candidates(train_events, customers, labels["at"].to_numpy(),
                                         half_life)
    x_train, c_train = x_all[trained], c_all[trained]
    y_train = labels["churned"].to_numpy()[trained]
    truth_train = labels["truth"].to_numpy()[trained]

    step("reading the live rows")
    rows = pd.read_csv(folder / "live_rows.csv")
    moments = pd.to_datetime(rows["label_time"], format="ISO8601").map(
        lambda stamp: stamp.timestamp()).to_numpy()
    live_events = events_by_customer(folder / "live" / "events.jsonl")
    live_customers = rows["customer_id"].astype(str).tolist()
    x_live, c_live = inputs_and_candidates(live_events, live_customers, moments, half_life)
    y_live = rows["churned"].to_numpy(dtype=float)
    truth_live = rows["true_churn_probability"].to_numpy(dtype=float)
    rule = roc_auc_or_nan(y_live, rows["rule"].to_numpy(dtype=float))
    truth = roc_auc_or_nan(y_live, truth_live)

    served = lgb.Booster(model_file=str(model / "churn.lgb.txt"))
    rebuilt = roc_auc_or_nan(y_live, np.asarray(served.predict(x_live)))
    answered = roc_auc_or_nan(y_live, rows["churn_risk"].to_numpy(dtype=float))
    print(f"Churn headroom on {folder} (SYNTHETIC), {len(rows):,} live rows, "
          f"{len(y_train):,} training rows")
    print(f"  today's rule {rule:.4f}   truth {truth:.4f}   served answers {answered:.4f} "
          f"(inputs rebuilt from the events: {rebuilt:.4f})")
    with_candidates = np.hstack([x_train, c_train]), np.hstack([x_live, c_live])
    figures = {}
    for name, score in (
            ("learnt, feature set v2", lambda: learnt(x_train, y_train, groups, x_live)),
            ("learnt, v2 + candidates", lambda: learnt(*with_candidates[:1], y_train, groups,
                                                        with_candidates[1])),
            ("features' ceiling, v2", lambda: distilled(x_train, _logit(truth_train), x_live)),
            ("features' ceiling, v2 + candidates",
             lambda: distilled(with_candidates[0], _logit(truth_train), with_candidates[1])),
            ("learning's ceiling (the truth as only input)",
             lambda: learnt(_logit(truth_train)[:, None], y_train, groups,
                            _logit(truth_live)[:, None]))):
        step(name)
        figures[name] = _print(name, roc_auc_or_nan(y_live, score()), (rule, truth))
    if args.diagnostics:
        headroom = (rule, truth)
        figures |= learning_curve(x_train, y_train, groups, np.array(customers)[trained], x_live,
                                  y_live, headroom, step)
        step("past issues' own churn chances")
        past_train = np.array([past_issue_chances(journey_until(train_events.get(c, []), at), at)
                               for c, at in zip(np.array(customers)[trained],
                                                labels["at"].to_numpy()[trained], strict=True)])
        past_live = np.array([past_issue_chances(journey_until(live_events.get(c, []), at), at)
                              for c, at in zip(live_customers, moments, strict=True)])
        for name, train_x, live_x in (
                ("past issues' churn chances only, learnt", past_train, past_live),
                ("v2 + past issues' churn chances, learnt", np.hstack([x_train, past_train]),
                 np.hstack([x_live, past_live]))):
            figures[name] = _print(name, roc_auc_or_nan(
                y_live, learnt(train_x, y_train, groups, live_x)), headroom)
    (folder / "quality_ceiling.json").write_text(json.dumps(
        {"rule": rule, "truth": truth, "served": answered, **figures}, indent=1))


if __name__ == "__main__":
    main()
