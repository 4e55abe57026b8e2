"""Compacts the offline history folder's per-push parts into a few files per UTC day."""

import fcntl
import json
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import JOIN_KEY, TIMESTAMP_FIELD

# Layout of the folder (dot files are invisible to Feast's and pyarrow's Parquet readers):
#   part-<time>-<id>.parquet          one per push (features/rows.py append_history), level 0
#   day-<YYYYMMDD>-L<k>-<id>.parquet  rows of one UTC day, level k >= 1
#   .compaction.lock                  flock: compactions exclusive, compacted readers shared
#   .compaction-journal.json          a committed merge still being applied
# Only parts and day files are compacted; backfill.parquet is left alone.
PART_PREFIX = "part-"
PARTS_BEFORE_COMPACTION = 32
# A day's files merge level by level, as in a size-tiered LSM tree, so each row is rewritten
# about log8(pushes that day / 32) times instead of the whole day being rewritten every 32 pushes.
DAY_FILES_PER_LEVEL = 8
LOCK_NAME = ".compaction.lock"
JOURNAL_NAME = ".compaction-journal.json"
_DAY_FILE = re.compile(r"^day-(\d{8})-L(\d+)-[0-9a-f]+\.parquet$")
_STAGING_GLOB = ".day-*.tmp"
_TICKS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def part_count(folder: Path) -> int:
    """How many uncompacted parts the folder holds."""
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.name.startswith(PART_PREFIX) and e.name.endswith(".parquet"))


def compact_history(folder: Path, *, whole_days: bool = False, wait: bool = True) -> bool:
    """Merges the parts into day files once PARTS_BEFORE_COMPACTION are there, then full levels.

    whole_days: merges every part now and leaves one file per day (what a reader of the whole
    history wants). wait=False returns False at once when another compaction or a compacted
    reader holds the folder. Every merge is one crash-safe step: rows are never lost or doubled.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
        if not held:
            return False
        finish_interrupted_merge(folder)
        parts = sorted(p.name for p in folder.glob(f"{PART_PREFIX}*.parquet"))
        if parts and (whole_days or len(parts) >= PARTS_BEFORE_COMPACTION):
            rows = _concat([pq.read_table(folder / name) for name in parts])
            _merge(folder, parts, {_day_file_name(day, 1): day_rows
                                   for day, day_rows in _split_by_utc_day(rows).items()})
        for day, by_level in _day_files(folder).items():
            if whole_days:
                files = [name for names in by_level.values() for name in names]
                if len(files) > 1:
                    _merge_files(folder, files, day, max(by_level))
            else:
                _merge_full_levels(folder, day, by_level)
    return True


@contextmanager
def compacted_history(folder: Path) -> Iterator[None]:
    """Compacts to one file per day, then keeps compactions out until the block ends.

    Holding the shared lock while reading means no merge can rename a day file into place and
    delete its parts while the reader lists and opens the folder.
    """
    compact_history(folder, whole_days=True)
    with _folder_lock(folder, fcntl.LOCK_SH):
        yield


def finish_interrupted_merge(folder: Path) -> None:
    """Completes a merge that was committed (journal written) and forgets one that was not.

    Call with the exclusive lock held. The journal is written only once every new file is
    staged and synced, so replaying it (renames, then deletions) is always safe and idempotent.
    """
    journal = folder / JOURNAL_NAME
    if journal.exists():
        plan = json.loads(journal.read_text())
        for staging, name in plan["rename"].items():
            if (folder / staging).exists():
                os.replace(folder / staging, folder / name)
        _sync_dir(folder)  # the merged rows are durable under their names before the inputs go
        for name in plan["delete"]:
            (folder / name).unlink(missing_ok=True)
        _sync_dir(folder)
        journal.unlink()
    for staged in folder.glob(_STAGING_GLOB):  # written by a merge that never committed
        staged.unlink()
    (folder / f"{JOURNAL_NAME}.tmp").unlink(missing_ok=True)


def stage_merge(folder: Path, inputs: list[str], outputs: dict[str, pa.Table]) -> None:
    """Writes `outputs` (name -> rows) as hidden staging files and commits the merge's journal.

    After this returns the merge is decided: finish_interrupted_merge makes the outputs visible
    and deletes `inputs`, even after a crash.
    """
    renames = {}
    for name, table in outputs.items():
        staging = folder / f".{name}.tmp"
        pq.write_table(table, staging)
        _sync_file(staging)
        renames[staging.name] = name
    pending = folder / f"{JOURNAL_NAME}.tmp"
    pending.write_text(json.dumps({"rename": renames, "delete": inputs}))
    _sync_file(pending)
    os.replace(pending, folder / JOURNAL_NAME)  # the commit point
    _sync_dir(folder)


def _merge(folder: Path, inputs: list[str], outputs: dict[str, pa.Table]) -> None:
    stage_merge(folder, inputs, outputs)
    finish_interrupted_merge(folder)


def _merge_full_levels(folder: Path, day: str, by_level: dict[int, list[str]]) -> None:
    level = 1
    while level <= max(by_level):
        files = by_level.get(level, [])
        if len(files) >= DAY_FILES_PER_LEVEL:
            by_level.setdefault(level + 1, []).append(_merge_files(folder, files, day, level + 1))
        level += 1


def _merge_files(folder: Path, files: list[str], day: str, level: int) -> str:
    merged = _day_file_name(day, level)
    _merge(folder, files, {merged: _concat([pq.read_table(folder / name) for name in files])})
    return merged


def _concat(tables: list[pa.Table]) -> pa.Table:
    # Rows keep the parts' schema, pandas metadata included, so they read back with the dtypes of
    # features/rows.py rows_frame; sorted like the backfill.
    rows = pa.concat_tables(tables).replace_schema_metadata(tables[0].schema.metadata)
    return rows.sort_by([(TIMESTAMP_FIELD, "ascending"), (JOIN_KEY, "ascending")])


def _split_by_utc_day(rows: pa.Table) -> dict[str, pa.Table]:
    times = rows.column(TIMESTAMP_FIELD)
    days = times.cast(pa.int64()).to_numpy() // (86_400 * _TICKS_PER_SECOND[times.type.unit])
    return {datetime.fromtimestamp(int(day) * 86_400, UTC).strftime("%Y%m%d"):
            rows.filter(pa.array(days == day)) for day in np.unique(days)}


def _day_files(folder: Path) -> dict[str, dict[int, list[str]]]:
    """Day files by UTC day and level."""
    found: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(folder.iterdir()):
        if match := _DAY_FILE.match(path.name):
            found[match[1]][int(match[2])].append(path.name)
    return found


def _day_file_name(day: str, level: int) -> str:
    return f"day-{day}-L{level}-{uuid.uuid4().hex[:12]}.parquet"


@contextmanager
def _folder_lock(folder: Path, operation: int) -> Iterator[bool]:
    descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, operation)
        except BlockingIOError:
            held = False
        else:
            held = True
        yield held
    finally:
        os.close(descriptor)  # releases the lock


def _sync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_dir(folder: Path) -> None:
    _sync_file(folder)
