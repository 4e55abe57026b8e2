"""Reads journey events from JSON Lines or Parquet files in the documented schema."""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from features.events import Event, InvalidEvent, from_json_line, from_mapping

ParsedEvent = Event | InvalidEvent


def count_records(path: Path) -> int:
    """Number of records in an events file, for progress bars."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def read_events(path: Path, now: float | None = None) -> Iterator[ParsedEvent]:
    """Each record of the file as a validated Event or the InvalidEvent saying what is wrong."""
    if not path.is_file():
        raise FileNotFoundError(f"events file {path} does not exist")
    if path.suffix == ".parquet":
        yield from _parquet_events(path, now)
        return
    with path.open() as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield from_json_line(line, now)
            except InvalidEvent as error:
                yield error


REQUIRED_FIELDS = (("event_id", "eventId"), ("customer_id", "customerId"),
                   ("occurred_at", "occurredAt"), ("type", "type"))


class EventSchemaError(ValueError):
    """An events file whose columns do not follow the documented schema."""


def _parquet_events(path: Path, now: float | None) -> Iterator[ParsedEvent]:
    import pyarrow.parquet as pq

    columns = set(pq.read_schema(path).names)
    for snake, camel in REQUIRED_FIELDS:
        if snake not in columns and camel not in columns:
            raise EventSchemaError(f"events file {path} lacks column '{snake}' (or '{camel}'); "
                                   "see the README for the events schema")
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for record in batch.to_pylist():
            try:
                yield from_mapping(_json_shaped(record), now)
            except InvalidEvent as error:
                yield error


def _json_shaped(record: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row in the proto3 JSON shape: timestamps as RFC 3339, nulls dropped."""
    shaped: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        shaped[key] = value.isoformat() if isinstance(value, datetime) else value
    return shaped


@dataclass(frozen=True)
class ValidEvents:
    """The valid events of a file, and how many records were not."""

    events: list[Event]
    rejected: int
    first_problem: str


def read_valid_events(path: Path, progress: Callable[[int], None] | None = None) -> ValidEvents:
    """Every valid event of a file; invalid records are counted and the first one described."""
    events: list[Event] = []
    rejected, first_problem = 0, ""
    for number, item in enumerate(read_events(path), start=1):
        if isinstance(item, Event):
            events.append(item)
        else:
            rejected += 1
            first_problem = first_problem or f"record {number}: {item.field}: {item.reason}"
        if progress:
            progress(1)
    return ValidEvents(events, rejected, first_problem)
