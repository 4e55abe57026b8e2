"""Measures the promoted churn and effort models through a live `effort serve` on SYNTHETIC data."""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ports import free_port
from scipy.stats import spearmanr

from effort.v1 import journey_service_pb2 as journey_pb
from effort.v1 import journey_service_pb2_grpc as journey_grpc
from effort.v1 import scoring_service_pb2 as scoring_pb
from effort.v1 import scoring_service_pb2_grpc as scoring_grpc
from features.batches import chunked
from features.catalog import MODEL_FEATURES
from features.domain import CHURN_HORIZON_DAYS, COMPLAINT_UNACKNOWLEDGED, DAY, ces_to_effort_score
from features.event_files import count_records
from features.events import Event, InvalidEvent, from_json_line
from features.model_input import ContactContext, input_vector, recorded_contact
from features.store import FEATURE_REPO, apply_definitions, open_store
from service.commands.progress import progress_bar
from service.models import ModelBundle, load_bundle
from service.servicers import MAX_EVENTS_PER_CALL
from training.baselines import fit_plain, raw_event_counts
from training.dataset import TRUTH_COLUMN
from training.evaluate import (
    expected_calibration_error,
    roc_auc_or_nan,
    rule_flags,
    truth_reference,
)
from training.registry import current_folder, list_versions
from training.tuning import FOLDS, customer_groups

CUSTOMERS_PER_CHUNK = 25  # customers recorded in one RecordEvents call, then scored one by one
SCORING_THREADS = 2
SERVING_TIMEOUT_SECONDS = 180.0
KNOWN_ATTEMPTS = 50  # Score retries until the server answers from the customer's stored journey
PARITY_TOLERANCE = 0.01  # hours/days features move by the seconds between recording and scoring


class StepFailed(RuntimeError):
    """A step that cannot go on; the message is the one line printed."""


@dataclass(frozen=True)
class Layout:
    """Where each step writes under --out."""

    out: Path

    @property
    def sim(self) -> Path:
        return self.out / "sim"

    @property
    def train(self) -> Path:
        return self.out / "train"

    @property
    def live(self) -> Path:
        return self.out / "live"

    @property
    def predictions(self) -> Path:
        return self.out / "predictions"

    @property
    def evaluation(self) -> Path:
        return self.out / "evaluation"

    @property
    def live_labels(self) -> Path:
        return self.out / "live_labels.csv"

    @property
    def train_repo(self) -> Path:
        return self.out / "feast_repo"

    @property
    def live_repo(self) -> Path:
        return self.out / "live_repo"

    @property
    def models(self) -> Path:
        return self.out / "models"

    @property
    def server_log(self) -> Path:
        return self.out / "serve.log"

    @property
    def report(self) -> Path:
        return self.out / "live_quality.json"

    @property
    def rows(self) -> Path:
        return self.out / "live_rows.csv"


@dataclass(frozen=True)
class LiveRow:
    """One live customer at the moment of one of its contacts whose churn outcome is known."""

    customer_id: str
    scored_as: str  # the id the server knows this row's journey by (see pick_live_rows)
    at: float  # label_time, epoch seconds
    churned: float
    ces: float  # NaN without an answer
    truth: float  # NaN when the labels carry no true probability
    horizon_closed: bool  # the 90-day horizon ended by --end: the outcome was not known early


@dataclass(frozen=True)
class Served:
    """What the server answered for one live row."""

    churn_risk: float
    effort_score: float
    features: np.ndarray  # the served model input in MODEL_FEATURES order
    attempts: int
    seconds_after_recording: float
    answered_at: float  # epoch seconds when the answer arrived


class Steps:
    """Wall-clock seconds of each step, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times the block as step `name` (adding up repeats); a failure inside names it."""
        started = time.perf_counter()
        try:
            yield
        except StepFailed:
            raise
        except Exception as error:
            if os.environ.get("EFFORT_DEBUG"):
                raise
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise StepFailed(f"{name}: {first}") from None
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="Simulate SYNTHETIC customers, train on some, "
                                     "serve the model and score the others through gRPC.")
    parser.add_argument("--seed", type=int, default=7, help="simulation and row-picking seed")
    parser.add_argument("--end", help="last simulated moment, ISO 8601 (default: the current "
                        "hour, UTC, as `effort simulate`)")
    parser.add_argument("--train-customers", type=int, default=8000)
    parser.add_argument("--live-customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=180, help="days simulated")
    parser.add_argument("--train-seed", type=int, default=7, help="seed of `effort train` and "
                        "of the plain baseline (default 7, as `effort train`)")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument("--rows", choices=("contacts", "customers"), default="contacts",
                        help="score every labelled contact of the live customers, as the "
                        "routing system would (default), or one drawn contact per customer")
    parser.add_argument("--rescore", action="store_true", help="reuse the simulation, split and "
                        "trained models already in --out; only pick, serve, score and measure again")
    parser.add_argument("--include-open-horizon", action="store_true", help="also pick labels "
                        "whose 90-day horizon was still open at --end (known only when the "
                        "customer churned, so they raise the churn rate; they carry no truth)")
    args = parser.parse_args(argv)
    if args.train_customers < 1 or args.live_customers < 1 or args.days < 1:
        parser.error("customers and days must be at least 1")
    end = (datetime.fromisoformat(args.end) if args.end
           else datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    args.end_time = end if end.tzinfo else end.replace(tzinfo=UTC)
    return args


def customer_ids(first: int, count: int) -> list[str]:
    """The simulator's customer ids C{first:06d}.. for `count` customers."""
    return [f"C{n:06d}" for n in range(first, first + count)]


def run_effort(what: str, arguments: list[str], env: dict[str, str]) -> None:
    """Runs an `effort` subcommand in its own process, its output on this terminal."""
    done = subprocess.run([sys.executable, "-m", "service.cli", *arguments], env=env, check=False)
    if done.returncode != 0:
        raise StepFailed(f"{what}: `effort {arguments[0]}` exited with {done.returncode}")


def effort_env(repo: Path, models: Path) -> dict[str, str]:
    """This process's environment with the feature repo and models dir of this run."""
    return {**os.environ, "EFFORT_FEATURE_REPO": str(repo.resolve()),
            "EFFORT_MODELS_DIR": str(models.resolve()), "EFFORT_ONLINE_STORE": "sqlite",
            "EFFORT_WORKERS": "1"}


def copy_feature_repo(target: Path) -> None:
    """A fresh copy of the Feast repo folder, without its data."""
    shutil.copytree(FEATURE_REPO, target, ignore=shutil.ignore_patterns("data", "__pycache__"))


def prepare_out(out: Path) -> None:
    """Refuses a folder that already holds something: each run starts from nothing."""
    if out.exists() and any(out.iterdir()):
        raise StepFailed(f"{out} is not empty: choose a new --out (nothing is overwritten)")
    out.mkdir(parents=True, exist_ok=True)


def reuse_out(layout: Layout) -> None:
    """For --rescore: checks that a finished run is there, and removes its serving leftovers."""
    missing = [p for p in (layout.sim / "events.jsonl", layout.sim / "labels.csv", layout.models)
               if not p.exists()]
    if missing:
        raise StepFailed(f"--rescore: {missing[0]} is missing: run once without --rescore")
    for folder in (layout.live_repo, layout.predictions, layout.evaluation):
        shutil.rmtree(folder, ignore_errors=True)
    layout.server_log.unlink(missing_ok=True)


def split_events(source: Path, train_ids: set[str], train_path: Path,
                 live_path: Path) -> tuple[list[Event], list[Event]]:
    """Writes each population's event lines to its own file; returns both as Events."""
    train_path.parent.mkdir(parents=True, exist_ok=True)
    live_path.parent.mkdir(parents=True, exist_ok=True)
    train: list[Event] = []
    live: list[Event] = []
    with (source.open() as lines, train_path.open("w") as train_out, live_path.open("w") as live_out,
          progress_bar(count_records(source), "splitting events") as tick):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = from_json_line(line)
            except InvalidEvent as error:
                raise StepFailed(f"split: {source} record {number}: {error}") from None
            is_train = event.customer_id in train_ids
            (train if is_train else live).append(event)
            (train_out if is_train else live_out).write(line)
            tick(1)
    return train, live


def split_labels(source: Path, train_ids: set[str], train_path: Path,
                 live_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Writes each population's label rows (all columns) to its own CSV; returns both, parsed."""
    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    is_train = raw["customer_id"].isin(train_ids)
    train, live = raw[is_train], raw[~is_train]
    train.to_csv(train_path, index=False, quoting=csv.QUOTE_MINIMAL)
    live.to_csv(live_path, index=False, quoting=csv.QUOTE_MINIMAL)
    return parse_labels(train), parse_labels(live)


def parse_labels(raw: pd.DataFrame) -> pd.DataFrame:
    """customer_id, at (epoch seconds, as training reads label_time), churned, ces, truth."""
    times = pd.to_datetime(raw["label_time"], utc=True, format="ISO8601")
    churned = raw["churned"].str.strip().str.lower().map({"true": 1.0, "false": 0.0})
    truth = (pd.to_numeric(raw[TRUTH_COLUMN], errors="coerce")
             if TRUTH_COLUMN in raw.columns else pd.Series(np.nan, index=raw.index))
    return pd.DataFrame({
        "customer_id": raw["customer_id"].astype(str),
        "at": [stamp.timestamp() for stamp in times],
        "churned": churned.astype("float64"),
        "ces": pd.to_numeric(raw["ces"], errors="coerce").astype("float64"),
        "truth": truth.astype("float64"),
    }).sort_values(["at", "customer_id"], kind="stable").reset_index(drop=True)


def pick_live_rows(labels: pd.DataFrame, live_ids: Sequence[str], seed: int, end: float,
                   open_horizon: bool, every_contact: bool) -> list[LiveRow]:
    """The live customers' known-outcome labels, in customer id order: all of them when
    `every_contact`, else one per customer drawn with default_rng(seed); customers without one
    are skipped.

    Every contact is the population the service answers for, and the one training learns from
    (a label per contact). Each such row is scored as its own customer, "<id>@<n>", holding the
    journey up to that contact moved to now, so that rows of one customer do not see each
    other's later events. One contact per customer weighs customers equally instead: heavy
    contacters, who churn more, count less (their churn rate is about half the per-contact one).

    Unless `open_horizon`, only labels whose 90-day horizon closed by `end` count as known: a
    later label is known only when its customer churned, so taking it would favour churners.
    """
    rng = np.random.default_rng(seed)
    closed = labels["at"] + CHURN_HORIZON_DAYS * DAY <= end
    known = labels[labels["churned"].notna() & (closed | open_horizon)]
    by_customer = {cid: group for cid, group in known.groupby("customer_id", sort=False)}
    rows: list[LiveRow] = []
    for cid in live_ids:
        group = by_customer.get(cid)
        if group is None:
            continue
        picks = (list(enumerate(group.itertuples())) if every_contact
                 else [(0, list(group.itertuples())[int(rng.integers(len(group)))])])
        rows.extend(LiveRow(cid, f"{cid}@{n}" if every_contact else cid, float(pick.at),
                            float(pick.churned), float(pick.ces), float(pick.truth),
                            bool(pick.at + CHURN_HORIZON_DAYS * DAY <= end))
                    for n, pick in picks)
    return rows


def one_per_customer(rows: Sequence[LiveRow], seed: int) -> np.ndarray:
    """Indexes of one row per customer, drawn with default_rng(seed): the customer-weighted
    view of per-contact rows."""
    rng = np.random.default_rng(seed)
    by_customer: dict[str, list[int]] = defaultdict(list)
    for k, row in enumerate(rows):
        by_customer[row.customer_id].append(k)
    return np.array([ks[int(rng.integers(len(ks)))] for ks in by_customer.values()], dtype=int)


def check_rows(rows: Sequence[LiveRow]) -> None:
    """Fails unless the live rows hold churners, stayers and CES answers to measure with."""
    churned = sum(1 for r in rows if r.churned)
    answered = sum(1 for r in rows if not math.isnan(r.ces))
    if not rows or churned in (0, len(rows)) or answered < 2:
        raise StepFailed(f"pick: {len(rows):,} live rows with {churned:,} churners and "
                         f"{answered:,} CES answers are too few to measure: raise "
                         "--live-customers")


def by_customer(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Each customer's events in time order."""
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        grouped[event.customer_id].append(event)
    for history in grouped.values():
        history.sort(key=lambda e: (e.occurred_at, e.event_id))
    return grouped


def start_server(layout: Layout, port: int) -> subprocess.Popen[bytes]:
    """`effort serve` on the live repo and the trained models, its output in serve.log."""
    env = {**effort_env(layout.live_repo, layout.models), "EFFORT_GRPC_HOST": "127.0.0.1",
           "EFFORT_GRPC_PORT": str(port), "EFFORT_METRICS_PORT": str(free_port()),
           "EFFORT_PREDICTION_LOG_DIR": str(layout.predictions.resolve())}
    with layout.server_log.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_until_serving(process: subprocess.Popen[bytes], address: str, log: Path) -> None:
    """Returns once the gRPC health check answers SERVING; fails when the server exits."""
    deadline = time.monotonic() + SERVING_TIMEOUT_SECONDS
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if (stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        == health_pb2.HealthCheckResponse.SERVING):
                    return
            except grpc.RpcError:
                pass
            if process.poll() is not None:
                raise StepFailed(f"serve: `effort serve` exited with {process.returncode}: "
                                 f"{last_line(log)}")
            time.sleep(0.1)
    raise StepFailed(f"serve: not SERVING after {SERVING_TIMEOUT_SECONDS:.0f} s (see {log})")


def last_line(path: Path) -> str:
    """The last non-empty line of a text file, or a placeholder."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then a kill if it does not drain in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def journey_until(history: Sequence[Event], at: float) -> list[Event]:
    """The events that had happened at `at`."""
    return [e for e in history if e.occurred_at <= at]


def shifted(event: Event, by: float, row: LiveRow) -> Event:
    """The event moved `by` seconds, its absolute customer_since with it, under the row's
    scored_as id (its event_id suffixed alike, so that it is a new event of a new customer)."""
    since = event.customer_since + by if event.customer_since is not None else None
    alias = row.scored_as[len(row.customer_id):]
    return replace(event, occurred_at=event.occurred_at + by, customer_since=since,
                   customer_id=row.scored_as, event_id=event.event_id + alias)


def score_request(row: LiveRow, contact: ContactContext | None) -> scoring_pb.ScoreRequest:
    """Score for the customer with the context of the contact recorded at its moment."""
    if contact is None:
        return scoring_pb.ScoreRequest(customer_id=row.scored_as, include_features=True)
    return scoring_pb.ScoreRequest(
        customer_id=row.scored_as, channel=contact.channel,  # type: ignore[arg-type]
        intent=contact.intent, queue_wait_seconds=contact.queue_wait_seconds,
        ivr_steps_so_far=contact.ivr_steps_so_far, include_features=True)


def record(stub: journey_grpc.JourneyServiceStub, events: list[Event]) -> None:
    """RecordEvents in calls of at most MAX_EVENTS_PER_CALL; any rejection fails the run."""
    for chunk in chunked(events, MAX_EVENTS_PER_CALL):
        answer = stub.RecordEvents(journey_pb.RecordEventsRequest(
            events=[e.to_proto() for e in chunk]), timeout=120)
        if answer.rejected:
            first = answer.rejected_events[0]
            raise StepFailed(f"live scoring: {answer.rejected} events rejected, the first "
                             f"({chunk[first.index].event_id}): {first.field}: {first.reason}")


def score_known(stub: scoring_grpc.ScoringServiceStub,
                request: scoring_pb.ScoreRequest) -> tuple[scoring_pb.ScoreResponse, int]:
    """Score, asked again until the answer comes from the stored journey (customer_known and
    not degraded); the answer and the attempts it took."""
    for attempt in range(1, KNOWN_ATTEMPTS + 1):
        answer = stub.Score(request, timeout=10)
        if answer.customer_known and not answer.degraded:
            return answer, attempt
        time.sleep(0.02 * attempt)
    why = answer.degraded_reason or "customer_known stayed false"
    raise StepFailed(f"live scoring: {request.customer_id} was recorded but never scored from "
                     f"its journey ({why})")


def served_vector(features: Any) -> np.ndarray:
    """The features map of a response in MODEL_FEATURES order; absent ones are NaN."""
    return np.array([features.get(name, math.nan)
                     for name in MODEL_FEATURES], dtype=np.float64)


def score_chunk(channel: grpc.Channel, rows: Sequence[LiveRow],
                histories: dict[str, list[Event]]) -> list[Served]:
    """Records each row's journey up to its moment, moved to now, then scores the row."""
    journey = journey_grpc.JourneyServiceStub(channel)
    scoring = scoring_grpc.ScoringServiceStub(channel)
    now = time.time()
    pasts = [journey_until(histories[row.customer_id], row.at) for row in rows]
    record(journey, [shifted(e, now - row.at, row) for row, past in zip(rows, pasts, strict=True)
                     for e in past])
    served = []
    for row, past in zip(rows, pasts, strict=True):
        answer, attempts = score_known(scoring, score_request(row, recorded_contact(past, row.at)))
        answered_at = time.time()
        served.append(Served(answer.churn_risk, answer.effort_score,
                             served_vector(answer.features), attempts, answered_at - now,
                             answered_at))
    return served


def score_live(address: str, rows: list[LiveRow],
               histories: dict[str, list[Event]]) -> list[Served]:
    """Every live row through the server, a few chunks at a time; results in row order."""
    chunks = [rows[k:k + CUSTOMERS_PER_CHUNK] for k in range(0, len(rows), CUSTOMERS_PER_CHUNK)]
    results: list[list[Served]] = [[] for _ in chunks]
    with (grpc.insecure_channel(address) as channel,
          ThreadPoolExecutor(SCORING_THREADS, thread_name_prefix="live") as pool,
          progress_bar(len(rows), "scoring live customers") as tick):
        futures = {pool.submit(score_chunk, channel, chunk, histories): k
                   for k, chunk in enumerate(chunks)}
        for future in as_completed(futures):
            k = futures[future]
            results[k] = future.result()
            tick(len(results[k]))
    return [served for chunk in results for served in chunk]


def offline_inputs(rows: Sequence[LiveRow], histories: dict[str, list[Event]],
                   bundle: ModelBundle) -> np.ndarray:
    """The model input each row would have as a training row: features/journey.py's
    compute_features on the unshifted events at label_time (with the model's half-life), and the
    contact recorded then."""
    matrix = np.empty((len(rows), len(MODEL_FEATURES)), dtype=np.float64)
    for out, row in zip(matrix, rows, strict=True):
        past = journey_until(histories[row.customer_id], row.at)
        input_vector(past, row.at, recorded_contact(past, row.at), out=out,
                     half_life_days=bundle.effort_half_life_days)
    return matrix


def baseline_rows(labels: pd.DataFrame, end: float) -> pd.DataFrame:
    """Training-population label rows the plain baseline learns from: churn outcomes whose
    90-day horizon closed by `end`, and CES answers; time-ordered."""
    closed = labels["at"] + CHURN_HORIZON_DAYS * DAY <= end
    churn_known = labels["churned"].notna() & closed
    usable = labels[churn_known | labels["ces"].notna()].copy()
    usable["churned"] = usable["churned"].where(churn_known[usable.index])
    return usable.reset_index(drop=True)


def plain_on_live(train_labels: pd.DataFrame, train_events: list[Event], rows: Sequence[LiveRow],
                  live_events: list[Event], end: float, seed: int) -> dict[str, Any]:
    """training/baselines.py's plain models fitted on the training population, scored on the
    live rows (churn on all of them, effort on those with a CES answer)."""
    train = baseline_rows(train_labels, end)
    live_counts = raw_event_counts(live_events, [r.customer_id for r in rows],
                                   np.array([r.at for r in rows]))
    counts = np.vstack([
        raw_event_counts(train_events, train["customer_id"].tolist(), train["at"].to_numpy()),
        live_counts])
    churned = np.concatenate([train["churned"].to_numpy(), [r.churned for r in rows]])
    ces = np.concatenate([train["ces"].to_numpy(), [r.ces for r in rows]])
    is_train = np.arange(len(churned)) < len(train)
    groups = customer_groups([*train["customer_id"].tolist(), *(r.customer_id for r in rows)],
                             FOLDS)
    churn, effort = fit_plain(counts, churned, ces, is_train & ~np.isnan(churned),
                              is_train & ~np.isnan(ces), groups, seed)
    return plain_figures(rows, np.asarray(churn.predict(live_counts)),
                         np.asarray(effort.predict(live_counts)))


def plain_figures(rows: Sequence[LiveRow], churn_scores: np.ndarray,
                  predicted_ces: np.ndarray) -> dict[str, Any]:
    """The plain models' churn ROC-AUC and effort Spearman on `rows`, from their scores."""
    ces = np.array([r.ces for r in rows])
    answered = ~np.isnan(ces)
    return {"churn_scores": churn_scores, "predicted_ces": predicted_ces,
            "churn_roc_auc": roc_auc_or_nan(np.array([r.churned for r in rows]), churn_scores),
            "effort_spearman": float(spearmanr(predicted_ces[answered],
                                               ces[answered]).statistic)}


def write_rows(path: Path, rows: Sequence[LiveRow], served: Sequence[Served],
               offline: np.ndarray, offline_risk: np.ndarray) -> None:
    """One line per live row: its label, what the server answered, the rule and the in-process
    score of the training-style input, for checking any figure by hand."""
    rule = rule_flags(pd.DataFrame(offline, columns=list(MODEL_FEATURES)))
    pd.DataFrame({
        "customer_id": [r.customer_id for r in rows], "scored_as": [r.scored_as for r in rows],
        "label_time": [datetime.fromtimestamp(r.at, UTC).isoformat() for r in rows],
        "churned": [int(r.churned) for r in rows], "ces": [r.ces for r in rows],
        TRUTH_COLUMN: [r.truth for r in rows], "horizon_closed": [r.horizon_closed for r in rows],
        "churn_risk": [s.churn_risk for s in served],
        "effort_score": [s.effort_score for s in served], "rule": rule.astype(int),
        "churn_risk_training_style_input": offline_risk, "score_attempts": [s.attempts for s in served],
    }).to_csv(path, index=False)


def distinct_rows(matrix: np.ndarray) -> int:
    """Distinct input vectors, NaN equal to NaN."""
    return len(np.unique(np.nan_to_num(matrix, nan=-1e300), axis=0))


def feature_parity(served: np.ndarray, offline: np.ndarray) -> dict[str, dict[str, float]]:
    """Per model input whose served value differs from the training-style value on some rows:
    how many rows, and the mean served-minus-training difference over them (NaN: one missing)."""
    same = np.isclose(served, offline, rtol=0.0, atol=PARITY_TOLERANCE) | (
        np.isnan(served) & np.isnan(offline))
    return {name: {"rows": int((~same[:, k]).sum()),
                   "mean_difference": float(np.mean(served[~same[:, k], k] - offline[~same[:, k], k]))}
            for k, name in enumerate(MODEL_FEATURES) if not same[:, k].all()}


def measure(rows: list[LiveRow], served: list[Served], offline: np.ndarray,
            plain: dict[str, Any], offline_risk: np.ndarray) -> dict[str, Any]:
    """Every figure of the table, on the same live rows."""
    outcome = np.array([r.churned for r in rows])
    risk = np.array([s.churn_risk for s in served])
    effort = np.array([s.effort_score for s in served])
    ces = np.array([r.ces for r in rows])
    truth = np.array([r.truth for r in rows])
    frame = pd.DataFrame(offline, columns=list(MODEL_FEATURES))
    rule = rule_flags(frame)
    unacknowledged = frame["complaint_state"].to_numpy() == COMPLAINT_UNACKNOWLEDGED
    served_inputs = np.array([s.features for s in served])
    model, rule_auc = roc_auc_or_nan(outcome, risk), roc_auc_or_nan(outcome, rule.astype(float))
    truth_known = ~np.isnan(truth)
    versus_truth = (truth_reference(risk, rule, outcome, truth) if truth_known.all()
                    else dict.fromkeys(("truth_roc_auc", "headroom_captured",
                                        "truth_calibration_error",
                                        "mean_absolute_error_to_truth"), math.nan))
    answered = ~np.isnan(ces)
    closed = np.array([r.horizon_closed for r in rows])
    return {
        "rows": len(rows), "churners": int(outcome.sum()), "churn_rate": float(outcome.mean()),
        "churn": {
            "model_roc_auc": model, "rule_roc_auc": rule_auc, "rule_share": float(rule.mean()),
            "plain_baseline_roc_auc": plain["churn_roc_auc"],
            "truth_roc_auc": versus_truth["truth_roc_auc"], "truth_rows": int(truth_known.sum()),
            "headroom_share": versus_truth["headroom_captured"],
            "calibration_error": expected_calibration_error(risk, outcome),
            "truth_calibration_error": versus_truth["truth_calibration_error"],
            "mean_absolute_error_to_truth": versus_truth["mean_absolute_error_to_truth"],
            "mean_risk": float(risk.mean()),
            "distinct_risks": len(np.unique(risk)),
            "distinct_risk_share": len(np.unique(risk)) / len(rows),
            "distinct_inputs": distinct_rows(served_inputs),
        },
        "effort": {
            "rows": int(answered.sum()),
            "model_spearman": float(spearmanr(effort[answered],
                                              ces_to_effort_score(ces[answered])).statistic),
            "plain_baseline_spearman": plain["effort_spearman"],
        },
        "diagnostics": {
            "offline_inputs_model_roc_auc": roc_auc_or_nan(outcome, offline_risk),
            "offline_inputs_calibration_error": expected_calibration_error(offline_risk, outcome),
            "unacknowledged_complaint_rule_roc_auc": roc_auc_or_nan(outcome, unacknowledged.astype(float)),
            "horizon_closed_rows": int(closed.sum()),
            "horizon_closed_churn_rate": float(outcome[closed].mean()) if closed.any() else math.nan,
            "horizon_closed_model_roc_auc": roc_auc_or_nan(outcome[closed], risk[closed]),
            "horizon_closed_calibration_error": expected_calibration_error(risk[closed],
                                                                           outcome[closed])
            if closed.any() else math.nan,
            "rows_without_recorded_contact": int(np.isnan(offline[
                :, MODEL_FEATURES.index("request_channel")]).sum()),
            "served_inputs_differing": feature_parity(served_inputs, offline),
            "score_attempts_max": max(s.attempts for s in served),
            "rows_needing_retry": sum(1 for s in served if s.attempts > 1),
            "seconds_recording_to_score_max": max(s.seconds_after_recording for s in served),
        },
    }


def customer_view(rows: Sequence[LiveRow], served: Sequence[Served], offline: np.ndarray,
                  plain: dict[str, Any], offline_risk: np.ndarray,
                  picked: np.ndarray) -> dict[str, Any]:
    """`measure` on the `picked` rows only (one contact per customer), the same answers."""
    subset = [rows[k] for k in picked]
    return measure(subset, [served[k] for k in picked], offline[picked],
                   plain_figures(subset, plain["churn_scores"][picked],
                                 plain["predicted_ces"][picked]), offline_risk[picked])


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure, or n/a."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


LABEL_WIDTH = 38


def entry(label: str, value: str, note: str = "") -> str:
    """One aligned table line."""
    return f"  {label:<{LABEL_WIDTH}}{value:>6}" + (f"   {note}" if note else "")


def churn_lines(figures: dict[str, Any]) -> list[str]:
    """The churn ranking section."""
    c = figures["churn"]
    truth_note = ("" if not math.isnan(c["truth_roc_auc"]) else
                  f"labels carry no {TRUTH_COLUMN}" if c["truth_rows"] == 0 else
                  f"{TRUTH_COLUMN} known on {c['truth_rows']:,} of {figures['rows']:,} rows only")
    return [
        "churn ROC-AUC, same rows",
        entry("served model (churn_risk)", fmt(c["model_roc_auc"])),
        entry("today's rule (rule_flags)", fmt(c["rule_roc_auc"]), f"flags {c['rule_share']:.1%}: "
              "3+ contacts in 7 days or an open complaint"),
        entry("plain baseline (raw event counts)", fmt(c["plain_baseline_roc_auc"])),
        entry(f"truth ({TRUTH_COLUMN})", fmt(c["truth_roc_auc"]), truth_note),
        entry("headroom captured", fmt(c["headroom_share"], 2), "(model - rule) / (truth - rule)"),
        "calibration of churn_risk",
        entry("expected calibration error", fmt(c["calibration_error"]),
              f"mean risk {c['mean_risk']:.3f}, churn rate {figures['churn_rate']:.3f}; the "
              f"truth's own ECE {fmt(c['truth_calibration_error'])}"),
        entry("mean |churn_risk - truth|", fmt(c["mean_absolute_error_to_truth"])),
        entry("distinct risks share", fmt(c["distinct_risk_share"]),
              f"{c['distinct_risks']:,} distinct risks over {figures['rows']:,} rows "
              f"({c['distinct_inputs']:,} distinct served inputs)"),
        entry("distinct risks / distinct raw scores",
              fmt(c.get("distinct_risks_per_raw_score", math.nan)),
              f"{c.get('distinct_raw_scores', 0):,} distinct raw churn scores of the served "
              "inputs (goal at least 0.95)"),
    ]


def effort_lines(figures: dict[str, Any]) -> list[str]:
    """The effort ranking section."""
    e = figures["effort"]
    return [
        f"effort Spearman on the {e['rows']:,} rows with a CES answer (higher is better)",
        entry("served model", fmt(e["model_spearman"]), "effort_score (0-100, higher = more "
              "effort) against ces_to_effort_score(CES)"),
        entry("plain baseline", fmt(e["plain_baseline_spearman"]), "predicted CES against CES"),
    ]


def diagnostic_lines(figures: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """What helps read the figures: the same rows in process, skew, the training report."""
    d = figures["diagnostics"]
    differing = ", ".join(f"{name} on {n['rows']:,} rows (mean {n['mean_difference']:+.2f})"
                          for name, n in d["served_inputs_differing"].items())
    lines = [
        "diagnostics",
        entry("model on training-style inputs", fmt(d["offline_inputs_model_roc_auc"]),
              f"ROC-AUC, ECE {fmt(d['offline_inputs_calibration_error'])}: same rows and model "
              "in process, inputs from the unshifted events at label_time"),
        entry("served inputs differing from those", f"{len(d['served_inputs_differing'])}",
              differing),
        entry("`effort evaluate` on the log", fmt(figures["effort_evaluate"]["roc_auc"]),
              f"ROC-AUC from the server's prediction log joined to these labels (difference "
              f"{figures['effort_evaluate']['difference']:+.4f}; {joined_text(figures)})"),
        entry("unacknowledged-complaint rule alone", fmt(d["unacknowledged_complaint_rule_roc_auc"]),
              "ROC-AUC (the serving routing rule)"),
        entry("rows without a contact at label_time", f"{d['rows_without_recorded_contact']:,}",
              "scored without contact context"),
        entry("model at training (held-out test)", fmt(trained.get("churn_roc_auc")),
              f"ROC-AUC; rule {fmt(trained.get('rule_baseline_roc_auc'))}, plain "
              f"{fmt(trained.get('plain_baseline_churn_roc_auc'))}, ECE "
              f"{fmt(trained.get('churn_calibration_error'))}"),
    ]
    if d["horizon_closed_rows"] < figures["rows"]:
        lines.append(entry("rows whose 90-day horizon closed", f"{d['horizon_closed_rows']:,}",
                           f"churn rate {fmt(d['horizon_closed_churn_rate'])}, ROC-AUC "
                           f"{fmt(d['horizon_closed_model_roc_auc'])}, ECE "
                           f"{fmt(d['horizon_closed_calibration_error'])}"))
    return lines


def joined_text(figures: dict[str, Any]) -> str:
    """How the evaluation's join went, from its counts."""
    return ", ".join(f"{k} {v:,}" for k, v in figures["effort_evaluate"]["counts"].items()
                     if isinstance(v, int))


def customer_view_lines(view: dict[str, Any]) -> list[str]:
    """The one-contact-per-customer view of per-contact rows, in a few lines."""
    c = view["churn"]
    return [
        f"one contact per customer ({view['rows']:,} rows, churn rate {view['churn_rate']:.3f}), "
        "the same answers",
        entry("churn ROC-AUC model / rule", fmt(c["model_roc_auc"]),
              f"rule {fmt(c['rule_roc_auc'])}, plain {fmt(c['plain_baseline_roc_auc'])}, truth "
              f"{fmt(c['truth_roc_auc'])}, headroom {fmt(c['headroom_share'], 2)}"),
        entry("expected calibration error", fmt(c["calibration_error"]),
              f"mean risk {c['mean_risk']:.3f}; the truth's own ECE "
              f"{fmt(c['truth_calibration_error'])}"),
        entry("effort Spearman model", fmt(view["effort"]["model_spearman"]),
              f"plain {fmt(view['effort']['plain_baseline_spearman'])}"),
    ]


def table(args: argparse.Namespace, figures: dict[str, Any], trained: dict[str, Any]) -> str:
    """The printed report."""
    horizon = "" if args.include_open_horizon else ", its 90-day horizon closed"
    scored = (f"{figures['rows']:,} labelled contacts of live customers, each scored now as the "
              f"routing system would at that contact, with a known churn outcome{horizon}"
              if args.rows == "contacts" else
              f"{figures['rows']:,} live customers, each scored now at one contact with a known "
              f"churn outcome{horizon}")
    view = figures.get("one_contact_per_customer")
    return "\n".join([
        f"SYNTHETIC data: live quality through `effort serve` (seed {args.seed}, "
        f"{args.train_customers:,} training / {args.live_customers:,} live customers, "
        f"{args.days} days to {args.end_time.isoformat()})",
        f"{scored}; {figures['churners']:,} churned ({figures['churn_rate']:.1%})",
        "",
        *churn_lines(figures),
        *effort_lines(figures),
        *(customer_view_lines(view) if view else []),
        *diagnostic_lines(figures, trained),
        "seconds per step: " + ", ".join(f"{name} {s:.0f}"
                                         for name, s in figures["seconds"].items()),
    ])


def evaluate_from_log(layout: Layout, rows: Sequence[LiveRow], served: Sequence[Served],
                      version: str) -> dict[str, Any]:
    """`effort evaluate` on the server's prediction log with the rows' labels dated when their
    answers arrived: its churn ROC-AUC must be the one measured here from the answers."""
    pd.DataFrame({
        "customer_id": [r.scored_as for r in rows],
        "label_time": [datetime.fromtimestamp(s.answered_at, UTC).isoformat() for s in served],
        "ces": ["" if math.isnan(r.ces) else str(int(r.ces)) for r in rows],
        "churned": ["true" if r.churned else "false" for r in rows],
    }).to_csv(layout.live_labels, index=False)
    run_effort("evaluate", ["evaluate", "--labels", str(layout.live_labels), "--log-dir",
                            str(layout.predictions), "--out", str(layout.evaluation),
                            "--synthetic"], dict(os.environ))
    report = json.loads((layout.evaluation / "evaluation.json").read_text())
    entry_ = next(v for v in report["versions"] if v["model_version"] == version)
    return {"roc_auc": entry_["churn"]["roc_auc"], "counts": report["counts"]}


def json_safe(value: Any) -> Any:
    """NaN as null, numpy scalars as Python ones, recursively."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def trained_metrics(models: Path) -> dict[str, Any]:
    """The headline metrics the promoted model measured on its own held-out test."""
    current = current_folder(models).name
    return next((v.metrics for v in list_versions(models) if v.version == current), {})


@dataclass(frozen=True)
class Populations:
    """The simulated data split by customer: training and live events and parsed labels."""

    train_events: list[Event]
    live_events: list[Event]
    train_labels: pd.DataFrame
    live_labels: pd.DataFrame
    has_truth: bool  # the labels file has a true_churn_probability column


def simulate_and_split(args: argparse.Namespace, layout: Layout, steps: Steps) -> Populations:
    """`effort simulate` for both populations (unless --rescore reuses it), then one events and
    labels file per population."""
    if not args.rescore:
        with steps.step("simulate"):
            run_effort("simulate", ["simulate", "--customers",
                                    str(args.train_customers + args.live_customers),
                                    "--days", str(args.days), "--seed", str(args.seed),
                                    "--end", args.end_time.isoformat(), "--out", str(layout.sim)],
                       dict(os.environ))
    with steps.step("split"):
        train_ids = set(customer_ids(1, args.train_customers))
        train_events, live_events = split_events(
            layout.sim / "events.jsonl", train_ids, layout.train / "events.jsonl",
            layout.live / "events.jsonl")
        train_labels, live_labels = split_labels(
            layout.sim / "labels.csv", train_ids, layout.train / "labels.csv",
            layout.live / "labels.csv")
        has_truth = TRUTH_COLUMN in pd.read_csv(layout.sim / "labels.csv", nrows=0).columns
    return Populations(train_events, live_events, train_labels, live_labels, has_truth)


def train_isolated(args: argparse.Namespace, layout: Layout, steps: Steps) -> None:
    """`effort train --promote` on the training population, in this run's own store and models."""
    with steps.step("train"):
        copy_feature_repo(layout.train_repo)
        run_effort("train", ["train", "--events", str(layout.train / "events.jsonl"),
                             "--labels", str(layout.train / "labels.csv"), "--synthetic",
                             "--promote", "--seed", str(args.train_seed)],
                   effort_env(layout.train_repo, layout.models))


def serve_and_score(layout: Layout, rows: list[LiveRow], histories: dict[str, list[Event]],
                    steps: Steps) -> list[Served]:
    """Starts `effort serve` on an empty store, scores every live row through it, stops it."""
    with steps.step("serve"):
        copy_feature_repo(layout.live_repo)
        apply_definitions(open_store(layout.live_repo))  # `effort serve` expects an applied repo
        port = free_port()
        process = start_server(layout, port)
    try:
        with steps.step("serve"):
            wait_until_serving(process, f"127.0.0.1:{port}", layout.server_log)
        with steps.step("live scoring"):
            return score_live(f"127.0.0.1:{port}", rows, histories)
    finally:
        stop_server(process)


def run(args: argparse.Namespace, steps: Steps) -> dict[str, Any]:
    """All steps; returns the figures written to live_quality.json."""
    layout = Layout(args.out)
    if args.rescore:
        reuse_out(layout)
    else:
        prepare_out(layout.out)
    end = args.end_time.timestamp()
    data = simulate_and_split(args, layout, steps)
    if not args.rescore:
        train_isolated(args, layout, steps)
    with steps.step("pick"):
        rows = pick_live_rows(data.live_labels,
                              customer_ids(args.train_customers + 1, args.live_customers),
                              args.seed, end, args.include_open_horizon,
                              every_contact=args.rows == "contacts")
        histories = by_customer(data.live_events)
    check_rows(rows)
    served = serve_and_score(layout, rows, histories, steps)
    with steps.step("training-style inputs"):
        bundle = load_bundle(current_folder(layout.models))
        offline = offline_inputs(rows, histories, bundle)
        offline_risk = bundle.predict(offline)[1]
        served_raw = bundle.churn_explainer.predict_raw(np.array([s.features for s in served]))
    with steps.step("plain baseline"):
        plain = plain_on_live(data.train_labels, data.train_events, rows, data.live_events, end,
                              args.train_seed)
    with steps.step("effort evaluate"):
        evaluated = evaluate_from_log(layout, rows, served, bundle.version)
    with steps.step("metrics"):
        figures = measure(rows, served, offline, plain, offline_risk)
        figures["effort_evaluate"] = {
            **evaluated, "difference": evaluated["roc_auc"] - figures["churn"]["model_roc_auc"]}
        figures["churn"]["distinct_raw_scores"] = len(np.unique(served_raw))
        figures["churn"]["distinct_risks_per_raw_score"] = (figures["churn"]["distinct_risks"]
                                                            / len(np.unique(served_raw)))
        if args.rows == "contacts":
            figures["one_contact_per_customer"] = customer_view(
                rows, served, offline, plain, offline_risk, one_per_customer(rows, args.seed))
        write_rows(layout.rows, rows, served, offline, offline_risk)
    return {**figures, "seconds": steps.seconds, "trained": trained_metrics(layout.models),
            "run": {"data": "SYNTHETIC", "seed": args.seed, "end": args.end_time.isoformat(),
                    "days": args.days, "train_customers": args.train_customers,
                    "live_customers": args.live_customers, "train_seed": args.train_seed,
                    "rows": args.rows,
                    "include_open_horizon": args.include_open_horizon,
                    "truth_column": data.has_truth}}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs, prints the table and writes live_quality.json; one line and exit 1 on failure."""
    args = parse_args(argv)
    steps = Steps()
    try:
        figures = run(args, steps)
        Layout(args.out).report.write_text(json.dumps(json_safe(figures), indent=2) + "\n")
    except StepFailed as error:
        print(f"live_quality: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # outside a step: still one line, unless EFFORT_DEBUG is set
        if os.environ.get("EFFORT_DEBUG"):
            raise
        print(f"live_quality: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 1
    print(table(args, figures, figures["trained"]))
    print(f"figures: {Layout(args.out).report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
