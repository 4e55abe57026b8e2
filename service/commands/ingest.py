"""`effort ingest FILE`: record a file of journey events (JSON Lines or Parquet), into the stores
directly or through a running server's RecordEvents (`--address`)."""

import argparse

from features.event_files import count_records
from features.ingest import Recorder, ingest_file
from service.client import Connection
from service.commands.progress import progress_bar
from service.remote_recorder import RemoteRecorder
from service.settings import Settings
from service.stores import open_stores

SHOWN_REJECTIONS = 20


def run(args: argparse.Namespace) -> None:
    """Records the file and prints the counts and the first rejections."""
    recorder: Recorder
    if args.address:
        connection = Connection.from_args(args.address, args.ca, args.cert, args.key, args.token)
        recorder = RemoteRecorder(connection.channel(), connection.metadata)
    else:
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
