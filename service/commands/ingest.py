"""`effort ingest FILE`: record a file of journey events (JSON Lines or Parquet)."""

import argparse

from features.event_files import count_records
from features.ingest import ingest_file
from service.commands.progress import progress_bar
from service.settings import Settings
from service.stores import open_stores

SHOWN_REJECTIONS = 20


def run(args: argparse.Namespace) -> None:
    """Records the file and prints the counts and the first rejections."""
    recorder = open_stores(Settings()).recorder
    with progress_bar(count_records(args.file), "ingesting events") as tick:
        result = ingest_file(recorder, args.file, args.batch, tick)
    rejections = result.rejections
    print(f"{result.accepted:,} accepted, {result.duplicates:,} duplicates, "
          f"{len(rejections):,} rejected")
    for line in rejections[:SHOWN_REJECTIONS]:
        print("  " + line)
    if len(rejections) > SHOWN_REJECTIONS:
        print(f"  ... and {len(rejections) - SHOWN_REJECTIONS:,} more")
