"""Seeded journey simulator: SYNTHETIC contact-center events, labels and true churn probabilities.

Effects follow the research in docs/features.md: repeat contacts, channel switches, transfers, IVR friction,
waits, unanswered emails and complaint handling raise effort (lower CES answers) and churn;
proactive notices avert contacts. Labels are drawn from the journey features the customer has
at each contact, computed by the same code that serves them, plus noise.

Churn: at the end of each issue the customer decides to leave with a probability set by the
features and CES answers of that issue (`_churn_logit`); the first yes sets a churn date 1 to 60
days later, after which no issue starts. A label at a contact is "true" when that date falls
within CHURN_HORIZON_DAYS after the contact.

The true churn probability of a label (labels column `true_churn_probability`, written when
`truth_samples` > 0) is the chance of "true" given all the simulator knows at the contact except
its past churn decisions: the customer's hidden issue rate and channel, their events, the issues
already due, and the churn probabilities of their past issues. Past decisions are summed exactly,
given that the customer was still there when the current issue began; the rest of the current
issue and the issues still to come are averaged over `truth_samples` re-simulations, each adding
the exact chance that one of its issues decides churn in time. It is empty when the outcome is.
"""

import csv
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from features.domain import (
    CHURN_HORIZON_DAYS,
    COMPLAINT_ACKNOWLEDGED,
    COMPLAINT_RESOLVED,
    COMPLAINT_UNACKNOWLEDGED,
    DAY,
    HOUR,
    VOICE,
)
from features.events import ET, Event
from features.journey import compute_features

INTENTS = ("billing", "technical", "order", "account", "cancel")
INTENT_WEIGHTS = (0.3, 0.3, 0.2, 0.15, 0.05)
FIRST_CONTACT_RESOLUTION = {"billing": 0.7, "technical": 0.5, "order": 0.75, "account": 0.8,
                            "cancel": 0.6}
ASSISTED_CHANNELS = (1, 2, 3, 4, 7)  # voice, chat, email, sms, social
CHANNEL_WEIGHTS = (0.45, 0.25, 0.15, 0.10, 0.05)
IVR_MENUS = ("main", "billing", "tech", "orders", "account")
ISSUES_PER_180_DAYS = (2.0, 1.4)  # gamma shape and scale of a customer's hidden issue rate
MAX_ATTEMPTS = 6
CHURN_DELAY_DAYS = (1.0, 60.0)  # uniform delay from the decision to the churn date
LABEL_COLUMNS = ("customer_id", "label_time", "ces", "churned", "true_churn_probability")


@dataclass
class SimulationResult:
    """What one simulation produced."""

    events: list[Event] = field(default_factory=list)
    labels: list[dict[str, object]] = field(default_factory=list)

    def churn_rate(self) -> float:
        known = [row["churned"] for row in self.labels if row["churned"] != ""]
        return sum(1 for c in known if c == "true") / max(1, len(known))


@dataclass
class _Customer:
    """One customer's hidden traits and the events written so far, numbering event ids."""

    customer_id: str
    end: float
    preferred_channel: int
    issues_per_second: float
    events: list[Event] = field(default_factory=list)

    def emit(self, t: float, event_type: int, **details: object) -> Event | None:
        if t > self.end:
            return None  # has not happened yet at the end of the simulation
        event = Event(event_id=f"{self.customer_id}-E{len(self.events) + 1:05d}",
                      customer_id=self.customer_id, occurred_at=round(t, 3), type=event_type,
                      **details)  # type: ignore[arg-type]
        self.events.append(event)
        return event


@dataclass
class _Issue:
    """An issue in progress: what its next attempt and its churn decision depend on."""

    intent: str
    channel: int
    started_at: float
    attempts: int = 0
    failures: int = 0
    answers: list[int] = field(default_factory=list)

    def copy(self) -> "_Issue":
        return replace(self, answers=list(self.answers))


@dataclass(frozen=True)
class _Contact:
    """A contact whose outcome (resolution, CES answer, survey) is still to be drawn."""

    event: Event
    transfers: int
    finished_at: float


@dataclass(frozen=True)
class _LabelMoment:
    """A label and the state of its customer's simulation at the contact it belongs to."""

    label: dict[str, object]
    contact: _Contact
    issue: _Issue
    events_written: int
    due_issues: tuple[float, ...]  # issue times already passed, waiting for the current issue
    past_decisions: tuple[tuple[float, float], ...]  # (issue end, churn probability)


OnContact = Callable[[_Contact, _Issue], dict[str, object] | None]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _ces_answer(row: dict[str, object], rng: np.random.Generator) -> int:
    """CES 2.0 answer drawn from the effort drivers of the customer's features."""
    f = {k: (0.0 if v is None else float(v)) for k, v in row.items()}  # type: ignore[arg-type]
    latent = (6.3 - 0.55 * max(0.0, f["contacts_7d"] - 1) - 0.45 * f["channel_switches_7d"]
              - 0.5 * f["transfers_last"] - 0.25 * f["transfers_7d"] - 0.004 * f["wait_seconds_avg_7d"]
              - 0.35 * f["ivr_zero_out_7d"] - 0.15 * f["ivr_retries_7d"]
              - 0.7 * f["self_service_fail_7d"] - 0.5 * f["abandoned_7d"]
              - 0.4 * f["emails_unanswered_30d"]
              - 1.2 * (f["complaint_state"] == COMPLAINT_UNACKNOWLEDGED)
              - 0.6 * (f["complaint_state"] == COMPLAINT_ACKNOWLEDGED)
              + 0.8 * f["sentiment_last"] + rng.normal(0.0, 0.7))
    return int(min(7, max(1, round(latent))))


def _churn_logit(row: dict[str, object], ces: float) -> float:
    """Churn log-odds after an episode: effort and complaint handling dominate (section 5)."""
    f = {k: (0.0 if v is None else float(v)) for k, v in row.items()}  # type: ignore[arg-type]
    state = f["complaint_state"]
    return (-5.4 + 0.45 * max(0.0, f["contacts_7d"] - 1) + 0.35 * f["transfers_7d"]
            + 0.3 * f["channel_switches_7d"] + 0.35 * f["emails_unanswered_30d"]
            + 0.4 * f["abandoned_7d"] + 0.5 * (4.0 - ces) / 3.0
            + 2.2 * (state == COMPLAINT_UNACKNOWLEDGED) + 1.5 * (state == COMPLAINT_ACKNOWLEDGED)
            - 0.2 * (state == COMPLAINT_RESOLVED) - 0.6 * f["sentiment_last"]
            - 0.25 * math.log1p(f["tenure_days"] / 365.0) - 0.3 * f["proactive_notices_7d"])


def _churn_probability(customer: _Customer, t: float, answers: list[int]) -> float:
    """The chance that the customer decides to leave at the end of an issue at `t`."""
    mean_ces = sum(answers) / len(answers) if answers else 4.0
    return decision_churn_chance(customer.events, t, mean_ces)


def decision_churn_chance(events: list[Event], t: float, mean_ces: float = 4.0) -> float:
    """The chance of a churn decision at the end of an issue at `t`, given the events then and
    the issue's mean CES answer (4, the scale's middle, when none)."""
    return _sigmoid(_churn_logit(compute_features(events, t), mean_ces))


def _decided_by(decided_at: float, moment: float) -> float:
    """The chance that a churn decided at `decided_at` has its churn date at or before `moment`."""
    low, high = CHURN_DELAY_DAYS
    return min(1.0, max(0.0, ((moment - decided_at) / DAY - low) / (high - low)))


def simulate(n_customers: int, days: int, end: datetime, seed: int,
             progress: Callable[[int], None] | None = None,
             truth_samples: int = 0, history_days: int = 0) -> SimulationResult:
    """Simulates `days` of journeys ending at `end` for customers C000001..; deterministic.

    `history_days` more are simulated before them, with events but no labels, so that every
    label has that much history behind it, as in a contact center that did not open yesterday
    (LONG_WINDOW_DAYS makes the longest windows complete).

    With `truth_samples` > 0 each label whose horizon ends within the simulation also gets its
    true churn probability (module docstring), computed on every core; the events and labels do
    not depend on it. `progress` ticks once per customer done.
    """
    rng = np.random.default_rng(seed)
    end_ts = end.timestamp()
    start_ts = end_ts - (days + history_days) * DAY
    labels_from = end_ts - days * DAY
    result = SimulationResult()
    journeys = []
    for number in range(1, n_customers + 1):
        customer, moments, churn_at = _simulate_customer(f"C{number:06d}", rng, start_ts, end_ts)
        moments = [m for m in moments if m.contact.event.occurred_at >= labels_from]
        for moment in moments:
            t = moment.contact.event.occurred_at
            moment.label["churned"] = _outcome_of(churn_at, t, end_ts)
            moment.label["true_churn_probability"] = ""
            result.labels.append(moment.label)
        result.events.extend(customer.events)
        journeys.append((seed, number, customer, moments, end_ts, truth_samples))
        if progress and not truth_samples:
            progress(1)
    if truth_samples:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for (*_, moments, _end, _samples), truths in zip(
                    journeys, pool.map(_label_truths, journeys, chunksize=50), strict=True):
                for moment, truth in zip(moments, truths, strict=True):
                    if truth is not None:
                        moment.label["true_churn_probability"] = round(truth, 6)
                if progress:
                    progress(1)
    return result


def _outcome_of(churn_at: float | None, t: float, end: float) -> str:
    """The churned column of a label at `t`: true, false, or empty while the horizon is open."""
    horizon = CHURN_HORIZON_DAYS * DAY
    if churn_at is not None and churn_at <= t + horizon:
        return "true"
    return "false" if t + horizon <= end else ""


def _label_truths(journey: tuple[int, int, "_Customer", list["_LabelMoment"], float, int]
                  ) -> list[float | None]:
    """The true churn probability of each of one customer's labels; None while the horizon is
    open. Its own random stream (seed, customer number) keeps it apart from the data's."""
    seed, number, customer, moments, end, samples = journey
    rng = np.random.default_rng([seed, number])
    horizon = CHURN_HORIZON_DAYS * DAY
    return [_true_churn_probability(customer, moment, moment.contact.event.occurred_at + horizon,
                                    samples, rng)
            if moment.contact.event.occurred_at + horizon <= end else None
            for moment in moments]


def _simulate_customer(customer_id: str, rng: np.random.Generator, start: float, end: float
                       ) -> tuple[_Customer, list[_LabelMoment], float | None]:
    """One customer's journey: their events, their label moments and their churn date if any."""
    tenure_days = float(rng.uniform(20, 3650))
    value = float(round(rng.lognormal(6.2, 1.0), 2))
    preferred = int(rng.choice(ASSISTED_CHANNELS, p=CHANNEL_WEIGHTS))
    issue_rate = float(rng.gamma(*ISSUES_PER_180_DAYS))  # issues per 180 days
    expected_issues = issue_rate * (end - start) / (180 * DAY)
    # Issue times are uniform over (start + 1 day, end]: a Poisson process of this intensity.
    customer = _Customer(customer_id, end, preferred, expected_issues / (end - start - DAY))
    customer.emit(start + rng.uniform(0, HOUR), ET.EVENT_TYPE_PROFILE_UPDATE,
                  customer_since=start - tenure_days * DAY, customer_value=value)
    n_issues = int(rng.poisson(expected_issues))
    issue_times = sorted(float(t) for t in rng.uniform(start + DAY, end, size=n_issues))
    churn_at: float | None = None
    decisions: list[tuple[float, float]] = []
    moments: list[_LabelMoment] = []
    busy_until = start
    for index, t_issue in enumerate(issue_times):
        t = max(t_issue, busy_until)
        if t >= end or (churn_at is not None and t >= churn_at):
            break

        def on_contact(contact: _Contact, issue: _Issue, index: int = index) -> dict[str, object]:
            at = contact.event.occurred_at
            label: dict[str, object] = {
                "customer_id": customer_id,
                "label_time": datetime.fromtimestamp(at, UTC).isoformat(), "ces": ""}
            moments.append(_LabelMoment(
                label, contact, issue.copy(), len(customer.events),
                tuple(x for x in issue_times[index + 1:] if x <= at), tuple(decisions)))
            return label

        answers, t = _simulate_issue(customer, rng, t, on_contact)
        busy_until = t
        probability = _churn_probability(customer, min(t, end), answers)
        decisions.append((t, probability))
        if churn_at is None and rng.random() < probability:
            churn_at = t + float(rng.uniform(*CHURN_DELAY_DAYS)) * DAY
    return customer, moments, churn_at


def _simulate_issue(customer: _Customer, rng: np.random.Generator, t: float,
                    on_contact: OnContact | None) -> tuple[list[int], float]:
    """One customer issue from first attempt to resolution or give-up; returns CES answers."""
    intent = str(rng.choice(INTENTS, p=INTENT_WEIGHTS))
    issue = _Issue(intent, customer.preferred_channel, started_at=t)
    if rng.random() < 0.15:
        customer.emit(t - rng.uniform(HOUR, 2 * DAY), ET.EVENT_TYPE_PROACTIVE_NOTICE,
                      channel=4, intent=intent)
        if rng.random() < 0.5:
            return [], t  # the notice answered the question: no inbound contact
    if rng.random() < 0.4:
        customer.emit(t, ET.EVENT_TYPE_SELF_SERVICE, channel=int(rng.choice((5, 6))), intent=intent)
        if rng.random() < 0.5:
            return [], t
        t += rng.uniform(5 * 60, 50 * 60)
    return _attempts(customer, rng, issue, t, on_contact)


def _attempts(customer: _Customer, rng: np.random.Generator, issue: _Issue, t: float,
              on_contact: OnContact | None, open_contact: _Contact | None = None
              ) -> tuple[list[int], float]:
    """Assisted attempts until the issue is resolved or given up; returns CES answers and the
    time it ended. `open_contact` is a contact already made whose outcome is still to be drawn."""
    while True:
        if open_contact is not None:
            label = on_contact(open_contact, issue) if on_contact else None
            resolved, t = _outcome(customer, rng, issue, open_contact, label)
            if resolved:
                return issue.answers, t
            open_contact = None
        if issue.attempts >= MAX_ATTEMPTS or t >= customer.end:
            return issue.answers, t
        if issue.attempts and rng.random() < 0.4:
            issue.channel = int(rng.choice(ASSISTED_CHANNELS, p=CHANNEL_WEIGHTS))
        issue.attempts += 1
        open_contact, t = _attempt(customer, rng, t, issue.channel, issue.intent)
        if open_contact is None:
            t += rng.uniform(5 * 60, 2 * HOUR)


def _outcome(customer: _Customer, rng: np.random.Generator, issue: _Issue, contact: _Contact,
             label: dict[str, object] | None) -> tuple[bool, float]:
    """What a contact led to: resolution or not, a CES answer, maybe a survey and a complaint;
    returns whether it resolved the issue and when the customer goes on."""
    t = contact.finished_at
    resolved = (rng.random() < FIRST_CONTACT_RESOLUTION[issue.intent]
                - 0.12 * contact.transfers - 0.05 * issue.failures)
    ces = _ces_answer(compute_features(customer.events, t), rng)
    if rng.random() < 0.35:
        customer.emit(t + rng.uniform(HOUR, 6 * HOUR), ET.EVENT_TYPE_SURVEY, ces=ces,
                      contact_id=contact.event.contact_id, channel=issue.channel)
        issue.answers.append(ces)
        if label is not None:
            label["ces"] = ces
    if resolved:
        return True, t + HOUR
    issue.failures += 1
    if issue.failures >= 2 and rng.random() < 0.3:
        _complaint(customer, rng, t + rng.uniform(HOUR, DAY))
    return False, t + float(rng.exponential(1.5)) * DAY + HOUR


def _attempt(customer: _Customer, rng: np.random.Generator, t: float, channel: int,
             intent: str) -> tuple[_Contact | None, float]:
    """One assisted-contact attempt; returns the contact (None if abandoned) and the time after."""
    contact_id = f"{customer.customer_id}-K{len(customer.events) + 1:05d}"
    if channel == VOICE:
        steps = 1 + int(rng.poisson(2.0))
        menu = "main"
        for _ in range(steps):
            customer.emit(t, ET.EVENT_TYPE_IVR_STEP, channel=1, ivr_menu=menu, contact_id=contact_id)
            t += rng.uniform(10, 40)
            menu = menu if rng.random() < 0.3 else str(rng.choice(IVR_MENUS))
        if steps > 3 and rng.random() < 0.35:
            customer.emit(t, ET.EVENT_TYPE_IVR_ZERO_OUT, channel=1, contact_id=contact_id)
    wait_mean = {1: 120.0, 2: 45.0, 3: 0.0, 4: 30.0, 7: 60.0}[channel]
    wait = float(round(rng.exponential(wait_mean), 1)) if wait_mean else 0.0
    if channel in (1, 2) and rng.random() < wait / (wait + 420.0):
        customer.emit(t + wait, ET.EVENT_TYPE_ABANDON, channel=channel, wait_seconds=wait,
                      contact_id=contact_id)
        return None, t + wait
    sentiment = float(np.clip(rng.normal(0.15 - wait / 900.0, 0.35), -1, 1))
    event = customer.emit(t, ET.EVENT_TYPE_CONTACT, channel=channel, intent=intent,
                          wait_seconds=wait, sentiment=round(sentiment, 3), contact_id=contact_id)
    if event is None:
        return None, t  # the simulation ends before this contact
    if channel == 3:
        customer.emit(t, ET.EVENT_TYPE_EMAIL_RECEIVED, channel=3, intent=intent,
                      contact_id=contact_id)
        if rng.random() < 0.56:
            customer.emit(t + rng.uniform(2 * HOUR, 2 * DAY), ET.EVENT_TYPE_EMAIL_ANSWERED,
                          channel=3, contact_id=contact_id)
        return _Contact(event, 0, t + HOUR), t + HOUR
    transfers = int(rng.poisson(0.6 if intent == "technical" else 0.3))
    for i in range(transfers):
        customer.emit(t + wait + 120.0 * (i + 1), ET.EVENT_TYPE_TRANSFER, channel=channel,
                      contact_id=contact_id)
    finished = t + wait + 120.0 * (transfers + 1) + rng.uniform(120, 900)
    return _Contact(event, transfers, finished), finished


def _complaint(customer: _Customer, rng: np.random.Generator, t: float) -> None:
    customer.emit(t, ET.EVENT_TYPE_COMPLAINT_OPENED, channel=3)
    if rng.random() < 0.6:
        t_ack = t + rng.uniform(0.2, 5) * DAY
        if t_ack < customer.end:
            customer.emit(t_ack, ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED)
            t_res = t_ack + rng.uniform(1, 20) * DAY
            if rng.random() < 0.6 and t_res < customer.end:
                customer.emit(t_res, ET.EVENT_TYPE_COMPLAINT_RESOLVED)


def _true_churn_probability(customer: _Customer, moment: _LabelMoment, horizon_end: float,
                            samples: int, rng: np.random.Generator) -> float:
    """P(churn date in (contact, horizon_end]) given the state at the contact (module docstring)."""
    began = moment.issue.started_at
    no_decision_yet, landed, still_there = 1.0, 0.0, 0.0
    for decided_at, probability in moment.past_decisions:
        first = no_decision_yet * probability  # this is the first decision to leave
        landed += first * (_decided_by(decided_at, horizon_end) - _decided_by(decided_at, began))
        still_there += first * (1.0 - _decided_by(decided_at, began))
        no_decision_yet *= 1.0 - probability
    if no_decision_yet > 0.0:
        future = sum(_future_churn_chance(customer, moment, horizon_end, rng)
                     for _ in range(samples)) / samples
        landed += no_decision_yet * future
    return landed / (still_there + no_decision_yet)


def _future_churn_chance(customer: _Customer, moment: _LabelMoment, horizon_end: float,
                         rng: np.random.Generator) -> float:
    """One re-simulation from the contact on: the chance that the current issue or a later one
    is the first to decide churn, with a churn date by `horizon_end`."""
    twin = _Customer(customer.customer_id, horizon_end, customer.preferred_channel,
                     customer.issues_per_second, customer.events[:moment.events_written])
    at = moment.contact.event.occurred_at
    answers, t = _attempts(twin, rng, moment.issue.copy(), at, None, moment.contact)
    decisions = [(t, _churn_probability(twin, min(t, horizon_end), answers))]
    arrivals = int(rng.poisson(customer.issues_per_second * (horizon_end - at)))
    upcoming = sorted([*moment.due_issues, *rng.uniform(at, horizon_end, size=arrivals)])
    last_start = horizon_end - CHURN_DELAY_DAYS[0] * DAY  # a later decision cannot land in time
    for t_issue in upcoming:
        start = max(float(t_issue), t)
        if start >= last_start:
            break
        answers, t = _simulate_issue(twin, rng, start, None)
        decisions.append((t, _churn_probability(twin, min(t, horizon_end), answers)))
    chance, no_decision_yet = 0.0, 1.0
    for decided_at, probability in decisions:
        chance += no_decision_yet * probability * _decided_by(decided_at, horizon_end)
        no_decision_yet *= 1.0 - probability
    return chance


def write_files(result: SimulationResult, out_dir: Path,
                progress: Callable[[int], None] | None = None) -> tuple[Path, Path]:
    """Writes events.jsonl (proto3 JSON, time-ordered) and labels.csv in the documented schema."""
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path, labels_path = out_dir / "events.jsonl", out_dir / "labels.csv"
    with events_path.open("w") as out:
        for event in sorted(result.events, key=lambda e: (e.occurred_at, e.event_id)):
            out.write(event.to_json() + "\n")
            if progress:
                progress(1)
    with labels_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(LABEL_COLUMNS))
        writer.writeheader()
        writer.writerows(sorted(result.labels, key=lambda r: (str(r["label_time"]),
                                                               str(r["customer_id"]))))
    return events_path, labels_path
