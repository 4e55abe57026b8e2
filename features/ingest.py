"""Records an events file in batches (the library behind `effort ingest`)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from features.batches import chunked
from features.event_files import ParsedEvent, read_events
from features.recorder import RecordOutcome


class Recorder(Protocol):
    """What ingesting needs: the stores' JourneyRecorder, or a server's RecordEvents."""

    def record_parsed(self, parsed: Sequence[ParsedEvent]) -> RecordOutcome: ...

    def mark_loaded(self) -> None: ...


@dataclass
class IngestResult:
    """What recording a file did; each rejection names its record number, field and reason."""

    accepted: int = 0
    duplicates: int = 0
    rejections: list[str] = field(default_factory=list)


def ingest_file(recorder: Recorder, path: Path, batch_size: int,
                progress: Callable[[int], None] | None = None) -> IngestResult:
    """Records every event of the file, `batch_size` at a time; invalid records are rejected.
    At the end it writes the stores' load marker (service/store_watch.py)."""
    result = IngestResult()
    position = 0
    batch: list[ParsedEvent]
    for batch in chunked(read_events(path), batch_size):
        outcome = recorder.record_parsed(batch)
        result.accepted += outcome.accepted
        result.duplicates += outcome.duplicates
        result.rejections += [f"record {position + r.index + 1}: {r.field}: {r.reason}"
                              for r in outcome.rejections]
        position += len(batch)
        if progress:
            progress(len(batch))
    recorder.mark_loaded()  # a whole file is in: servers watch this marker for data loss
    return result
