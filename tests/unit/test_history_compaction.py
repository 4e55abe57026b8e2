"""The offline history stays a few files per day, with every pushed row exactly once (real files)."""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.catalog import JOIN_KEY, TIMESTAMP_FIELD
from features.events import ET, Event
from features.history_compaction import (
    DAY_FILES_PER_LEVEL,
    JOURNAL_NAME,
    PARTS_BEFORE_COMPACTION,
    compact_history,
    compacted_history,
    stage_merge,
)
from features.rows import (
    BACKFILL_PART,
    append_history,
    ensure_history,
    feature_record,
    history_dir,
    rows_frame,
)

DAY = 86_400.0
START = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def one_row(n: int, at: float) -> pd.DataFrame:
    """A pushed row of customer n at `at`, with a real window state."""
    customer = f"C{n:06d}"
    state = [Event(f"{customer}-e", customer, at - 60.0, ET.EVENT_TYPE_CONTACT, channel=1)]
    return rows_frame([feature_record(customer, state, at)])


def visible_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def history_rows(folder: Path) -> pd.DataFrame:
    """Every row a Parquet reader of the folder sees, in a fixed order."""
    frames = [pd.read_parquet(folder / name) for name in visible_files(folder)]
    return in_order(pd.concat(frames, ignore_index=True))


def in_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([TIMESTAMP_FIELD, JOIN_KEY], kind="stable").reset_index(drop=True)


def files_by_day_and_level(folder: Path) -> Counter[tuple[str, str]]:
    return Counter((name.split("-")[1], name.split("-")[2]) for name in visible_files(folder)
                   if name.startswith("day-"))


def push_rows(repo: Path, times: list[float], first: int = 0) -> pd.DataFrame:
    frames = [one_row(first + n, at) for n, at in enumerate(times)]
    for frame in frames:
        append_history(repo, frame)
    return in_order(pd.concat(frames, ignore_index=True))


def test_200_single_row_pushes_over_3_days_leave_one_file_per_day_and_the_same_rows(
        tmp_path: Path) -> None:
    ensure_history(tmp_path)
    folder = history_dir(tmp_path)
    pushed = push_rows(tmp_path, [START + n * 3 * DAY / 200 for n in range(200)])

    names = visible_files(folder)
    assert sum(name.startswith("part-") for name in names) < PARTS_BEFORE_COMPACTION
    assert all(count < DAY_FILES_PER_LEVEL for count in files_by_day_and_level(folder).values())
    pd.testing.assert_frame_equal(history_rows(folder), pushed)

    assert compact_history(folder, whole_days=True)
    assert visible_files(folder)[0] == BACKFILL_PART
    days = [name.split("-")[1] for name in visible_files(folder)[1:]]
    assert days == ["20261101", "20261102", "20261103"]
    for name in visible_files(folder)[1:]:
        day_rows = pd.read_parquet(folder / name)
        assert (day_rows[TIMESTAMP_FIELD].dt.strftime("%Y%m%d") == name.split("-")[1]).all()
        assert day_rows.dtypes.equals(rows_frame([]).dtypes)
    pd.testing.assert_frame_equal(history_rows(folder), pushed)


def test_a_busy_day_merges_level_by_level(tmp_path: Path) -> None:
    folder = history_dir(tmp_path)
    pushes = PARTS_BEFORE_COMPACTION * DAY_FILES_PER_LEVEL
    pushed = push_rows(tmp_path, [START + n for n in range(pushes)])
    assert files_by_day_and_level(folder) == {("20261101", "L2"): 1}
    assert visible_files(folder) == [name for name in visible_files(folder) if name.startswith("day-")]
    pd.testing.assert_frame_equal(history_rows(folder), pushed)


def test_a_reader_holding_the_history_keeps_compactions_out(tmp_path: Path) -> None:
    folder = history_dir(tmp_path)
    first = push_rows(tmp_path, [START + n for n in range(3)])
    with compacted_history(folder):
        assert not compact_history(folder, wait=False)
        more = push_rows(tmp_path, [START + 10 + n for n in range(PARTS_BEFORE_COMPACTION)], first=3)
        assert sum(name.startswith("part-") for name in visible_files(folder)) == PARTS_BEFORE_COMPACTION
    push_rows(tmp_path, [START + 100], first=100)  # the next push compacts
    assert not any(name.startswith("part-") for name in visible_files(folder))
    everything = in_order(pd.concat([first, more, one_row(100, START + 100)], ignore_index=True))
    pd.testing.assert_frame_equal(history_rows(folder), everything)


def committed_merge_of_the_parts(folder: Path) -> list[tuple[str, str]]:
    """Stages and commits (journal written) a merge of every part into two day files, and
    returns the steps finishing it would take, in order: renames, then deletions."""
    parts = sorted(name for name in visible_files(folder) if name.startswith("part-"))
    rows = pa.concat_tables([pq.read_table(folder / name) for name in parts])
    first_day = rows.column(TIMESTAMP_FIELD).to_pandas() < pd.Timestamp(START + DAY, unit="s", tz="UTC")
    stage_merge(folder, parts, {"day-20261101-L1-aaaa.parquet": rows.filter(pa.array(first_day)),
                                "day-20261102-L1-bbbb.parquet": rows.filter(pa.array(~first_day))})
    plan = json.loads((folder / JOURNAL_NAME).read_text())
    return ([("rename", staging) for staging in plan["rename"]]
            + [("delete", name) for name in plan["delete"]])


@pytest.mark.parametrize("steps_done", range(7))
def test_a_crash_anywhere_in_a_committed_merge_loses_and_doubles_nothing(
        tmp_path: Path, steps_done: int) -> None:
    folder = history_dir(tmp_path)
    pushed = push_rows(tmp_path, [START + n * DAY / 2 for n in range(4)])  # 2 days, 4 parts
    steps = committed_merge_of_the_parts(folder)
    assert len(steps) == 6
    pd.testing.assert_frame_equal(history_rows(folder), pushed)  # staged files are hidden
    for action, name in steps[:steps_done]:  # what the merge did before the crash
        if action == "rename":
            os.replace(folder / name, folder / name.removeprefix(".").removesuffix(".tmp"))
        else:
            (folder / name).unlink()

    compact_history(folder)  # the next compaction, in any process, finishes the merge first

    assert sorted(visible_files(folder)) == ["day-20261101-L1-aaaa.parquet",
                                             "day-20261102-L1-bbbb.parquet"]
    assert sorted(os.listdir(folder)) == [".compaction.lock", *visible_files(folder)]
    pd.testing.assert_frame_equal(history_rows(folder), pushed)


def test_a_crash_before_the_commit_leaves_the_parts_and_drops_the_staged_files(tmp_path: Path) -> None:
    folder = history_dir(tmp_path)
    pushed = push_rows(tmp_path, [START + n * DAY / 2 for n in range(4)])
    part = next(name for name in visible_files(folder) if name.startswith("part-"))
    shutil.copy(folder / part, folder / ".day-20261101-L1-cccc.parquet.tmp")  # staged, not committed
    (folder / f"{JOURNAL_NAME}.tmp").write_text('{"rename": {".day-2026')  # journal half written

    compact_history(folder, whole_days=True)

    assert sorted(os.listdir(folder)) == [".compaction.lock", *visible_files(folder)]
    assert len(visible_files(folder)) == 2
    pd.testing.assert_frame_equal(history_rows(folder), pushed)
