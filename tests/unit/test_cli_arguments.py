"""`effort` argument errors: one readable line and exit status 2, no traceback; help lists everything."""

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=None)


@pytest.mark.parametrize("args", [
    ["simulate", "--customers", "0"],
    ["train", "--senior-share", "2"],
    ["frobnicate"],
    ["score"],
])
def test_bad_arguments_give_one_line(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_help_lists_every_subcommand() -> None:
    result = run("--help")
    for command in ("simulate", "train", "serve", "score", "ingest", "models", "tokens", "config"):
        assert command in result.stdout
