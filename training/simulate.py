"""Seeded journey simulator: SYNTHETIC contact-center events and labels for the demo.

Effects follow the research in docs/features.md: repeat contacts, channel switches, transfers, IVR friction,
waits, unanswered emails and complaint handling raise effort (lower CES answers) and churn;
proactive notices avert contacts. Labels are drawn from the journey features the customer has
at each contact, computed by the same code that serves them, plus noise.
"""

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class SimulationResult:
    """What one simulation produced."""

    events: list[Event] = field(default_factory=list)
    labels: list[dict[str, object]] = field(default_factory=list)

    def churn_rate(self) -> float:
        known = [row["churned"] for row in self.labels if row["churned"] != ""]
        return sum(1 for c in known if c == "true") / max(1, len(known))


class _Customer:
    """Event writer for one customer, numbering event ids."""

    def __init__(self, customer_id: str, end: float) -> None:
        self.customer_id = customer_id
        self.end = end
        self.events: list[Event] = []

    def emit(self, t: float, event_type: int, **details: object) -> Event | None:
        if t > self.end:
            return None  # has not happened yet at the end of the simulation
        event = Event(event_id=f"{self.customer_id}-E{len(self.events) + 1:05d}",
                      customer_id=self.customer_id, occurred_at=round(t, 3), type=event_type,
                      **details)  # type: ignore[arg-type]
        self.events.append(event)
        return event


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


def simulate(n_customers: int, days: int, end: datetime, seed: int,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Simulates `days` of journeys ending at `end` for customers C000001..; deterministic."""
    rng = np.random.default_rng(seed)
    end_ts = end.timestamp()
    start_ts = end_ts - days * DAY
    result = SimulationResult()
    for number in range(1, n_customers + 1):
        customer = _Customer(f"C{number:06d}", end_ts)
        _simulate_customer(customer, rng, start_ts, end_ts, result)
        result.events.extend(customer.events)
        if progress:
            progress(1)
    return result


def _simulate_customer(customer: _Customer, rng: np.random.Generator, start: float, end: float,
                       result: SimulationResult) -> None:
    tenure_days = float(rng.uniform(20, 3650))
    value = float(round(rng.lognormal(6.2, 1.0), 2))
    customer.emit(start + rng.uniform(0, HOUR), ET.EVENT_TYPE_PROFILE_UPDATE,
                  customer_since=start - tenure_days * DAY, customer_value=value)
    preferred = int(rng.choice(ASSISTED_CHANNELS, p=CHANNEL_WEIGHTS))
    issue_rate = float(rng.gamma(2.0, 1.4))  # issues per 180 days
    n_issues = int(rng.poisson(issue_rate * (end - start) / (180 * DAY)))
    issue_times = sorted(float(t) for t in rng.uniform(start + DAY, end, size=n_issues))
    churn_at: float | None = None
    labels: list[dict[str, object]] = []
    busy_until = start
    for t_issue in issue_times:
        t = max(t_issue, busy_until)
        if t >= end or (churn_at is not None and t >= churn_at):
            break
        ces_answers, t = _simulate_issue(customer, rng, t, end, preferred, labels)
        busy_until = t
        row = compute_features(customer.events, min(t, end))
        mean_ces = sum(ces_answers) / len(ces_answers) if ces_answers else 4.0
        if churn_at is None and rng.random() < _sigmoid(_churn_logit(row, mean_ces)):
            churn_at = t + float(rng.uniform(1, 60)) * DAY
    for label in labels:
        t_label = float(label.pop("_t"))  # type: ignore[arg-type]
        if churn_at is not None and churn_at <= t_label + CHURN_HORIZON_DAYS * DAY:
            label["churned"] = "true"
        elif t_label + CHURN_HORIZON_DAYS * DAY <= end:
            label["churned"] = "false"
        else:
            label["churned"] = ""  # horizon not over yet: outcome unknown
        result.labels.append(label)


def _simulate_issue(customer: _Customer, rng: np.random.Generator, t: float, end: float,
                    preferred: int, labels: list[dict[str, object]]) -> tuple[list[int], float]:
    """One customer issue from first attempt to resolution or give-up; returns CES answers."""
    intent = str(rng.choice(INTENTS, p=INTENT_WEIGHTS))
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
    channel, answers, failures = preferred, [], 0
    for attempt in range(6):
        if t >= end:
            break
        if attempt and rng.random() < 0.4:
            channel = int(rng.choice(ASSISTED_CHANNELS, p=CHANNEL_WEIGHTS))
        transfers, contact, t = _attempt(customer, rng, t, channel, intent)
        if contact is None:
            t += rng.uniform(5 * 60, 2 * HOUR)
            continue
        resolved = rng.random() < FIRST_CONTACT_RESOLUTION[intent] - 0.12 * transfers - 0.05 * failures
        row = compute_features(customer.events, t)
        ces = _ces_answer(row, rng)
        label: dict[str, object] = {
            "customer_id": customer.customer_id,
            "label_time": datetime.fromtimestamp(contact.occurred_at, UTC).isoformat(),
            "ces": "", "_t": contact.occurred_at,
        }
        if rng.random() < 0.35:
            customer.emit(t + rng.uniform(HOUR, 6 * HOUR), ET.EVENT_TYPE_SURVEY, ces=ces,
                          contact_id=contact.contact_id, channel=channel)
            label["ces"] = ces
            answers.append(ces)
        labels.append(label)
        if resolved:
            return answers, t + HOUR
        failures += 1
        if failures >= 2 and rng.random() < 0.3:
            _complaint(customer, rng, t + rng.uniform(HOUR, DAY), end)
        t += float(rng.exponential(1.5)) * DAY + HOUR
    return answers, t


def _attempt(customer: _Customer, rng: np.random.Generator, t: float, channel: int,
             intent: str) -> tuple[int, Event | None, float]:
    """One assisted-contact attempt; returns (transfers, the contact or None, time after it)."""
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
        return 0, None, t + wait
    sentiment = float(np.clip(rng.normal(0.15 - wait / 900.0, 0.35), -1, 1))
    contact = customer.emit(t, ET.EVENT_TYPE_CONTACT, channel=channel, intent=intent,
                            wait_seconds=wait, sentiment=round(sentiment, 3), contact_id=contact_id)
    if channel == 3:
        customer.emit(t, ET.EVENT_TYPE_EMAIL_RECEIVED, channel=3, intent=intent,
                      contact_id=contact_id)
        if rng.random() < 0.56:
            customer.emit(t + rng.uniform(2 * HOUR, 2 * DAY), ET.EVENT_TYPE_EMAIL_ANSWERED,
                          channel=3, contact_id=contact_id)
        return 0, contact, t + HOUR
    transfers = int(rng.poisson(0.6 if intent == "technical" else 0.3))
    for i in range(transfers):
        customer.emit(t + wait + 120.0 * (i + 1), ET.EVENT_TYPE_TRANSFER, channel=channel,
                      contact_id=contact_id)
    return transfers, contact, t + wait + 120.0 * (transfers + 1) + rng.uniform(120, 900)


def _complaint(customer: _Customer, rng: np.random.Generator, t: float, end: float) -> None:
    customer.emit(t, ET.EVENT_TYPE_COMPLAINT_OPENED, channel=3)
    if rng.random() < 0.6:
        t_ack = t + rng.uniform(0.2, 5) * DAY
        if t_ack < end:
            customer.emit(t_ack, ET.EVENT_TYPE_COMPLAINT_ACKNOWLEDGED)
            t_res = t_ack + rng.uniform(1, 20) * DAY
            if rng.random() < 0.6 and t_res < end:
                customer.emit(t_res, ET.EVENT_TYPE_COMPLAINT_RESOLVED)


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
        writer = csv.DictWriter(out, fieldnames=["customer_id", "label_time", "ces", "churned"])
        writer.writeheader()
        writer.writerows(sorted(result.labels, key=lambda r: (str(r["label_time"]),
                                                               str(r["customer_id"]))))
    return events_path, labels_path
