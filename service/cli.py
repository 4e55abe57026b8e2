"""The `effort` command: simulate, train, serve, score and ingest."""

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tqdm import tqdm

if TYPE_CHECKING:  # heavy imports load only in the subcommand that needs them
    from feast import FeatureStore

    from features.recorder import JourneyRecorder
    from service.settings import Settings

DEFAULT_DEMO_DIR = Path("var/demo")


class CliError(Exception):
    """A failure to report as one line, without a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


@contextmanager
def _progress(total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    with tqdm(total=total, desc=what, unit=" " + what.split()[-1], file=sys.stderr,
              dynamic_ncols=True, mininterval=0.5) as bar:
        yield bar.update


def _settings() -> "Settings":
    from service.settings import Settings

    return Settings()


def cmd_simulate(args: argparse.Namespace) -> None:
    from training.simulate import simulate, write_files

    end = (datetime.fromisoformat(args.end) if args.end
           else datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    with _progress(args.customers, "simulating customers") as tick:
        result = simulate(args.customers, args.days, end, args.seed, tick)
    with _progress(len(result.events), "writing events") as tick:
        events_path, labels_path = write_files(result, args.out, tick)
    print(f"SYNTHETIC demo data: {len(result.events):,} events for {args.customers:,} customers "
          f"over {args.days} days to {end.date()}, {len(result.labels):,} labels "
          f"(churn rate among known outcomes {result.churn_rate():.1%})")
    print(f"events: {events_path}\nlabels: {labels_path}")


def _open(settings: "Settings") -> tuple["FeatureStore", "JourneyRecorder"]:
    from features.recorder import JourneyRecorder
    from features.state import open_state
    from features.store import open_store

    store = open_store(settings.feature_repo, settings.online_store, settings.redis_address)
    state = open_state(settings.online_store, settings.feature_repo, settings.redis_address)
    return store, JourneyRecorder(store, state)


def cmd_train(args: argparse.Namespace) -> None:
    from features.backfill import load_history
    from features.event_files import count_records, read_events
    from features.events import Event
    from service.registry import promote
    from training.dataset import read_labels, training_frame
    from training.train import train_models

    settings = _settings()
    labels = read_labels(args.labels)  # check the labels before any long step
    store, recorder = _open(settings)
    events: list[Event] = []
    rejected, first_problem = 0, ""
    with _progress(count_records(args.events), "reading events") as tick:
        for number, item in enumerate(read_events(args.events), start=1):
            if isinstance(item, Event):
                events.append(item)
            else:
                rejected += 1
                first_problem = first_problem or f"record {number}: {item.field}: {item.reason}"
            tick(1)
    if not events:
        raise CliError(f"no valid events in {args.events}" + (
            f"; first problem: {first_problem}" if first_problem else ""))
    if rejected:
        print(f"events: {rejected:,} invalid records skipped, the first: {first_problem}",
              file=sys.stderr)
    with ExitStack() as bars:
        loaded = load_history(store, recorder, events,
                              lambda what, total: bars.enter_context(_progress(total, what)))
    print(f"feature store: {loaded.history_rows:,} offline history rows; {loaded.accepted:,} new "
          f"events, {loaded.duplicates:,} already recorded; {loaded.pushed_customers:,} customers "
          "pushed online", file=sys.stderr)
    frame = training_frame(store, labels)
    print(f"training set: {len(frame):,} label rows joined point-in-time through Feast",
          file=sys.stderr)
    with ExitStack() as cluster:
        client = None
        if args.engine == "dask":
            from dask.distributed import Client

            from training.dask_engine import local_client

            client = cluster.enter_context(
                Client(args.dask_scheduler) if args.dask_scheduler else local_client())
            print(f"training on Dask: {client.dashboard_link or client.scheduler.address}",
                  file=sys.stderr)
        result = train_models(frame, settings.models_dir, seed=args.seed,
                              synthetic=args.synthetic, senior_share=args.senior_share,
                              data_source=f"{args.events} + {args.labels}", dask_client=client)
    m = result.metrics
    tag = "SYNTHETIC data" if args.synthetic else "your data"
    print(f"metrics on {tag} (held-out test = latest 15% of labels): churn ROC-AUC "
          f"{m['churn_roc_auc']:.3f} (rule {m['rule_baseline_roc_auc']:.3f}), lift at senior share "
          f"{m['churn_lift_at_senior_share']:.2f} (rule's lift {m['rule_baseline_lift']:.2f} at "
          f"its own share), effort MAE {m['effort_mae_ces']:.2f} CES points, Spearman "
          f"{m['effort_spearman']:.3f}", file=sys.stderr)
    print(f"report: {result.folder / 'report.html'}", file=sys.stderr)
    if args.promote:
        promote(settings.models_dir, result.version)
        print(f"promoted {result.version} in {settings.models_dir}", file=sys.stderr)
    print(result.version)


def cmd_ingest(args: argparse.Namespace) -> None:
    from features.batches import chunked
    from features.event_files import ParsedEvent, count_records, read_events

    settings = _settings()
    _, recorder = _open(settings)
    accepted = duplicates = position = 0
    rejections: list[str] = []
    with _progress(count_records(args.file), "ingesting events") as tick:
        batch: list[ParsedEvent]
        for batch in chunked(read_events(args.file), args.batch):
            outcome = recorder.record_parsed(batch)
            accepted += outcome.accepted
            duplicates += outcome.duplicates
            rejections += [f"record {position + r.index + 1}: {r.field}: {r.reason}"
                           for r in outcome.rejections]
            position += len(batch)
            tick(len(batch))
    print(f"{accepted:,} accepted, {duplicates:,} duplicates, {len(rejections):,} rejected")
    for line in rejections[:20]:
        print("  " + line)
    if len(rejections) > 20:
        print(f"  ... and {len(rejections) - 20:,} more")


def cmd_models(args: argparse.Namespace) -> None:
    from service.registry import list_versions, promote, rollback

    models_dir = _settings().models_dir
    if args.action == "list":
        versions = list_versions(models_dir)
        if not versions:
            print(f"no model versions in {models_dir}")
        for v in versions:
            m = v.metrics
            print(f"{'*' if v.current else ' '} {v.version}  churn AUC "
                  f"{m.get('churn_roc_auc', float('nan')):.3f} (rule "
                  f"{m.get('rule_baseline_roc_auc', float('nan')):.3f})  effort MAE "
                  f"{m.get('effort_mae_ces', float('nan')):.2f}"
                  f"{'  SYNTHETIC data' if v.synthetic_data else ''}")
    elif args.action == "promote":
        if not args.version:
            raise CliError("promote needs a VERSION (see `effort models list`)")
        promote(models_dir, args.version)
        print(f"promoted {args.version}; running servers switch within "
              f"EFFORT_MODEL_POLL_SECONDS")
    else:
        print(f"rolled back to {rollback(models_dir)}")


def cmd_serve(args: argparse.Namespace) -> None:
    from service.server import serve

    overrides = {k: v for k, v in (("grpc_port", args.port), ("metrics_port", args.metrics_port),
                                   ("online_store", args.online_store)) if v is not None}
    serve(_settings().model_copy(update=overrides))


def cmd_score(args: argparse.Namespace) -> None:
    import grpc
    from google.protobuf import json_format

    from service.api.v1 import scoring_service_pb2 as pb
    from service.api.v1 import scoring_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(args.address) as channel:
        stub = pb_grpc.ScoringServiceStub(channel)
        try:
            response = stub.Score(pb.ScoreRequest(customer_id=args.customer_id,
                                                  include_features=args.features),
                                  timeout=args.timeout)
        except grpc.RpcError as error:
            raise CliError(f"{error.code().name}: {error.details()}") from None
    print(json_format.MessageToJson(response, indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The `effort` argument parser."""
    parser = _Parser(prog="effort", description="Customer-effort and churn-risk scoring for "
                     "contact centers. Settings come from EFFORT_* environment variables.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("simulate", help="write SYNTHETIC demo events and labels",
                       description="Simulate customer journeys (synthetic) and write "
                       "events.jsonl and labels.csv in the documented schema.")
    p.add_argument("--customers", type=_positive, default=10_000, help="customers (default 10000)")
    p.add_argument("--days", type=_positive, default=180, help="days simulated (default 180)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--end", help="last simulated moment, ISO 8601 (default: the current hour, UTC)")
    p.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR, help="output folder")
    p.set_defaults(run=cmd_simulate)

    p = sub.add_parser("train", help="train effort and churn models from events and labels",
                       description="Load events into the feature store, build a point-in-time "
                       "training set through Feast, fit both models and write a model folder. "
                       "Prints the new model version on its last line.")
    p.add_argument("--events", type=Path, default=DEFAULT_DEMO_DIR / "events.jsonl",
                   help="events file, JSON Lines or Parquet")
    p.add_argument("--labels", type=Path, default=DEFAULT_DEMO_DIR / "labels.csv",
                   help="labels file, CSV or Parquet (customer_id, label_time, ces, churned)")
    p.add_argument("--promote", action="store_true", help="serve the new model from now on")
    p.add_argument("--synthetic", action="store_true", help="mark the data as synthetic")
    p.add_argument("--seed", type=int, default=7, help="training seed (default 7)")
    p.add_argument("--senior-share", type=_share, default=0.15,
                   help="share of contacts to route senior (default 0.15)")
    p.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local LightGBM (default) or lightgbm.dask on a Dask cluster")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786; "
                   "without it --engine dask starts a local cluster of 2 workers")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("models", help="list, promote or roll back model versions",
                       description="The model registry in EFFORT_MODELS_DIR. Running servers "
                       "pick up a promoted version without dropping calls.")
    p.add_argument("action", choices=["list", "promote", "rollback"])
    p.add_argument("version", nargs="?", help="version to promote")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("serve", help="run the gRPC server and the metrics endpoint")
    p.add_argument("--port", type=int, help="gRPC port (default EFFORT_GRPC_PORT or 50051)")
    p.add_argument("--metrics-port", type=int, help="metrics port (default 9464)")
    p.add_argument("--online-store", choices=["sqlite", "redis"], help="online store kind")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("score", help="score one customer through a running server")
    p.add_argument("customer_id", help="customer id, for example C000001")
    p.add_argument("--address", default="localhost:50051", help="server address")
    p.add_argument("--features", action="store_true", help="include the feature values")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    p.set_defaults(run=cmd_score)

    p = sub.add_parser("ingest", help="record a file of journey events (JSON Lines or Parquet)")
    p.add_argument("file", type=Path, help="events file")
    p.add_argument("--batch", type=_positive, default=1000, help="events per batch")
    p.set_defaults(run=cmd_ingest)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `effort` command."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("EFFORT_DEBUG"):
            raise
        if isinstance(error, OSError) and error.strerror:
            message = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
        else:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"effort {args.command}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
