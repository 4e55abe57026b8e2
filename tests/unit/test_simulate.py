"""The SYNTHETIC journey simulator: deterministic, in the documented schema, effects as designed."""

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from features.event_files import read_events
from features.events import Event
from training.simulate import simulate, write_files

END = datetime(2026, 10, 1, tzinfo=UTC)


def test_same_seed_same_journeys_other_seed_other_journeys() -> None:
    first, again, other = (simulate(150, 90, END, seed) for seed in (5, 5, 6))
    assert first.events == again.events and first.labels == again.labels
    assert first.events != other.events


def test_files_follow_the_documented_schema(tmp_path: Path) -> None:
    result = simulate(100, 120, END, seed=3)
    events_path, labels_path = write_files(result, tmp_path)
    parsed = [item for item in read_events(events_path) if isinstance(item, Event)]
    assert len(parsed) == len(result.events)
    assert sorted(parsed, key=lambda e: e.event_id) == sorted(result.events,
                                                              key=lambda e: e.event_id)
    assert all(e.occurred_at <= END.timestamp() for e in result.events)
    with labels_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["customer_id", "label_time", "ces", "churned",
                             "true_churn_probability"]
    assert {r["true_churn_probability"] for r in rows} == {""}  # asked for no truth
    assert {r["customer_id"][:1] for r in rows} == {"C"}
    assert {r["churned"] for r in rows} <= {"true", "false", ""}
    assert {r["ces"] for r in rows if r["ces"]} <= {str(n) for n in range(1, 8)}


def test_repeat_contacts_mean_lower_ces_answers() -> None:
    from features.journey import compute_features

    result = simulate(1500, 180, END, seed=9)
    by_customer: dict[str, list[Event]] = {}
    for e in result.events:
        by_customer.setdefault(e.customer_id, []).append(e)
    repeat: list[int] = []
    single: list[int] = []
    for label in result.labels:
        if label["ces"] == "":
            continue
        t = datetime.fromisoformat(str(label["label_time"])).timestamp()
        row = compute_features(by_customer[str(label["customer_id"])], t)
        (repeat if row["contacts_7d"] >= 3 else single).append(int(label["ces"]))  # type: ignore[call-overload]
    assert len(repeat) > 30 and np.mean(repeat) < np.mean(single) - 0.5


def test_truth_is_written_for_known_outcomes_and_changes_no_other_column() -> None:
    from sklearn.metrics import roc_auc_score

    plain = simulate(700, 180, END, seed=4)
    with_truth = simulate(700, 180, END, seed=4, truth_samples=4)
    assert plain.events == with_truth.events
    strip = [{k: v for k, v in row.items() if k != "true_churn_probability"}
             for row in with_truth.labels]
    assert strip == [{k: v for k, v in row.items() if k != "true_churn_probability"}
                     for row in plain.labels]
    closed = END.timestamp() - 90 * 86400.0  # labels whose 90-day horizon ended in the data
    known = [row for row in with_truth.labels
             if datetime.fromisoformat(str(row["label_time"])).timestamp() <= closed]
    assert known and all(row["true_churn_probability"] != "" and row["churned"] != ""
                         for row in known)
    assert all(row["true_churn_probability"] == "" for row in with_truth.labels
               if row not in known)
    truth = np.array([float(str(row["true_churn_probability"])) for row in known])
    churned = np.array([row["churned"] == "true" for row in known])
    assert ((truth >= 0) & (truth <= 1)).all()
    # The truth is a probability of the outcome: near its rate on average, and it ranks.
    assert abs(truth.mean() - churned.mean()) < 0.05
    assert roc_auc_score(churned, truth) > 0.65
