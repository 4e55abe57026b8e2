"""The `effort` command: parses arguments and runs one module of service/commands per subcommand.

A subcommand's module is imported only when it runs, so `effort --help` and argument errors do
not wait for Feast, LightGBM or gRPC to import.
"""

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from pydantic_core import ValidationError

from features.domain import LONG_WINDOW_DAYS, SENIOR_SHARE
from service.error_text import one_line
from service.settings_report import describe_validation_error

DEFAULT_DEMO_DIR = Path("var/demo")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Version(argparse.Action):
    """--version: `effort <version>` of the installed distribution, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            installed = version("effort")
        except PackageNotFoundError:
            installed = "unknown (not installed)"
        print(f"effort {installed}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The `effort` argument parser."""
    parser = _Parser(prog="effort", description="Customer-effort and churn-risk scoring for "
                     "contact centers. Settings come from EFFORT_* environment variables.")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("simulate", help="write SYNTHETIC demo events and labels",
                       description="Simulate customer journeys (synthetic) and write "
                       "events.jsonl and labels.csv in the documented schema.")
    p.add_argument("--customers", type=_positive, default=10_000, help="customers (default 10000)")
    p.add_argument("--days", type=_positive, default=180, help="days with labels (default 180)")
    p.add_argument("--history-days", type=_non_negative, default=LONG_WINDOW_DAYS,
                   help="days simulated before them, events only, so that the longest feature "
                   f"windows are complete at every label (default {LONG_WINDOW_DAYS})")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--end", help="last simulated moment, ISO 8601 (default: the current hour, UTC)")
    p.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR, help="output folder")
    p.add_argument("--truth-samples", type=_non_negative, default=16, help="re-simulations per "
                   "label for its true churn probability (labels column true_churn_probability; "
                   "0 leaves it empty; default 16)")

    p = sub.add_parser("train", help="train effort and churn models from events and labels",
                       description="Load events into the feature store, build a point-in-time "
                       "training set through Feast, fit both models and write a model folder. "
                       "Prints the new model version on its last line.")
    p.add_argument("--events", type=Path, default=DEFAULT_DEMO_DIR / "events.jsonl",
                   help="events file, JSON Lines or Parquet")
    p.add_argument("--labels", type=Path, default=DEFAULT_DEMO_DIR / "labels.csv",
                   help="labels file, CSV or Parquet (customer_id, label_time, ces, churned)")
    p.add_argument("--promote", action="store_true", help="serve the new model from now on")
    p.add_argument("--force", action="store_true", help="with --promote: promote even when the "
                   "new model is worse than the serving one on its test rows")
    p.add_argument("--synthetic", action="store_true", help="mark the data as synthetic")
    p.add_argument("--seed", type=int, default=7, help="training seed (default 7)")
    p.add_argument("--senior-share", type=_share, default=SENIOR_SHARE,
                   help=f"share of contacts to route senior (default {SENIOR_SHARE})")
    p.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local LightGBM (default) or lightgbm.dask on a Dask cluster")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786; "
                   "without it --engine dask starts a local cluster of 2 workers")

    p = sub.add_parser("evaluate", help="judge the live models: labels joined to the prediction log",
                       description="Join outcome labels (the training labels schema) to the "
                       "prediction log (EFFORT_PREDICTION_LOG_DIR) and report, per model version, "
                       "churn ROC-AUC and capture beside today's rule, calibration, effort MAE and "
                       "Spearman, and the performance the calibrated scores promise before labels "
                       "exist. Writes report.html and evaluation.json.")
    p.add_argument("--labels", type=Path,
                   help="labels file, CSV or Parquet (customer_id, label_time, ces, churned; "
                   "optionally contact_id); without it only the expected figures")
    p.add_argument("--log-dir", type=Path, help="prediction log folder (default "
                   "EFFORT_PREDICTION_LOG_DIR, var/predictions)")
    p.add_argument("--out", type=Path, help="report folder (default var/evaluation/<UTC time>)")
    p.add_argument("--synthetic", action="store_true", help="mark the data as synthetic")
    p.add_argument("--since", type=_day, help="first day, YYYY-MM-DD (UTC): labels and answers")
    p.add_argument("--until", type=_day, help="last day, YYYY-MM-DD (UTC), included")
    p.add_argument("--match-seconds", type=_non_negative_float, default=1.0,
                   help="a prediction logged this close to label_time is the label's (default 1)")
    p.add_argument("--max-age-hours", type=_non_negative_float, default=24.0,
                   help="else the customer's latest prediction at most this long before "
                   "label_time (default 24)")

    p = sub.add_parser("models", help="list, promote, roll back or shadow model versions",
                       description="The model registry in EFFORT_MODELS_DIR. Running servers "
                       "pick up a promoted version without dropping calls; a shadowed version "
                       "is scored beside the champion, off the call path.")
    p.add_argument("action", choices=["list", "promote", "rollback", "shadow"])
    p.add_argument("version", nargs="?", help="version to promote or shadow")
    p.add_argument("--off", action="store_true", help="with shadow: stop shadowing")

    p = sub.add_parser("serve", help="run the gRPC server and the metrics endpoint")
    p.add_argument("--port", type=int, help="gRPC port (default EFFORT_GRPC_PORT or 50051)")
    p.add_argument("--metrics-port", type=int, help="metrics port (default 9464)")
    p.add_argument("--online-store", choices=["sqlite", "redis"], help="online store kind")

    p = sub.add_parser("config", help="print the effective settings, secrets masked",
                       description="Print every EFFORT_* setting's effective value and where it "
                       "came from (environment, .env or default), secrets masked, then the "
                       "EFFORT_* variables no setting reads.")
    p.add_argument("--json", action="store_true", help="one JSON object instead of lines")

    p = sub.add_parser("score", help="score one customer through a running server")
    p.add_argument("customer_id", help="customer id, for example C000001")
    p.add_argument("--address", default="localhost:50051", help="server address")
    p.add_argument("--features", action="store_true", help="include the feature values")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    _connection_options(p)

    p = sub.add_parser("tokens", help="add, list or revoke the bearer tokens of clients",
                       description="The token file (EFFORT_AUTH_TOKENS_FILE) keeps each client's "
                       "name, scopes and a hash of its token. `add` prints the new token once, "
                       "on its last line. Running servers pick up changes at their next call.")
    p.add_argument("action", choices=["add", "list", "revoke"])
    p.add_argument("name", nargs="?", help="client name, for add and revoke")
    p.add_argument("--scopes", help="for add: comma-separated, of score, record, admin")
    p.add_argument("--file", type=Path, help="token file (default EFFORT_AUTH_TOKENS_FILE)")

    p = sub.add_parser("ingest", help="record a file of journey events (JSON Lines or Parquet)",
                       description="Record a file of journey events: into the stores that "
                       "EFFORT_* settings name, or with --address through a running server's "
                       "RecordEvents (retried while it is unavailable; each event counts once).")
    p.add_argument("file", type=Path, help="events file")
    p.add_argument("--batch", type=_positive, default=1000, help="events per batch")
    p.add_argument("--address", help="send through the server at this address instead of "
                   "writing to the stores")
    _connection_options(p)
    return parser


def _connection_options(parser: argparse.ArgumentParser) -> None:
    """--token, --ca, --cert and --key: how to reach a server with TLS and authentication."""
    parser.add_argument("--token", help="bearer token (default: EFFORT_TOKEN); prefer the "
                        "variable, as arguments show in process lists")
    parser.add_argument("--ca", type=Path, help="PEM CA bundle to trust: TLS to the server")
    parser.add_argument("--cert", type=Path, help="PEM client certificate (mutual TLS)")
    parser.add_argument("--key", type=Path, help="PEM private key of --cert")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a day YYYY-MM-DD, got {text!r}") from None


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `effort` command."""
    args = build_parser().parse_args(argv)
    try:
        importlib.import_module(f"service.commands.{args.command}").run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("EFFORT_DEBUG"):
            raise
        # A ValidationError: every error, one line each, secrets masked.
        message = (describe_validation_error(error) if isinstance(error, ValidationError)
                   else one_line(error))
        print(f"effort {args.command}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
