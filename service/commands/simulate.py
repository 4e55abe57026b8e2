"""`effort simulate`: write SYNTHETIC demo events and labels."""

import argparse
from datetime import UTC, datetime

from service.commands.progress import progress_bar
from training.simulate import simulate, write_files


def run(args: argparse.Namespace) -> None:
    """Simulates, writes the files and says what they hold."""
    end = (datetime.fromisoformat(args.end) if args.end
           else datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    with progress_bar(args.customers, "simulating customers") as tick:
        result = simulate(args.customers, args.days, end, args.seed, tick, args.truth_samples,
                          args.history_days)
    with progress_bar(len(result.events), "writing events") as tick:
        events_path, labels_path = write_files(result, args.out, tick)
    print(f"SYNTHETIC demo data: {len(result.events):,} events for {args.customers:,} customers "
          f"over {args.history_days + args.days} days to {end.date()}, {len(result.labels):,} labels "
          f"in the last {args.days} days "
          f"(churn rate among known outcomes {result.churn_rate():.1%})")
    print(f"events: {events_path}\nlabels: {labels_path}")
