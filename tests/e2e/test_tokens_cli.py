"""`effort tokens` run for real: the token printed once, listed without its hash, revoked."""

import json
import subprocess
from pathlib import Path

from tests.helpers import run_effort


def run(*args: str, cwd: Path, tokens_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    variables = {} if tokens_file is None else {"EFFORT_AUTH_TOKENS_FILE": str(tokens_file)}
    return run_effort("tokens", *args, variables=variables, cwd=cwd, timeout=60)


def test_add_list_revoke(tmp_path: Path) -> None:
    path = tmp_path / "auth" / "tokens.json"
    added = run("add", "crm-batch", "--scopes", "score,record", cwd=tmp_path, tokens_file=path)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.strip().splitlines()
    token = lines[-1]
    assert len(lines) == 2 and token.startswith("eff_") and " " not in token
    assert "crm-batch" in lines[0] and "score,record" in lines[0] and "only" in lines[0]
    assert token not in path.read_text()
    stored = json.loads(path.read_text())["tokens"][0]

    listed = run("list", "--file", str(path), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "crm-batch" in listed.stdout and "score,record" in listed.stdout
    assert stored["created"] in listed.stdout
    assert stored["sha256"] not in listed.stdout and token not in listed.stdout

    revoked = run("revoke", "crm-batch", cwd=tmp_path, tokens_file=path)
    assert revoked.returncode == 0, revoked.stderr
    assert len(revoked.stdout.strip().splitlines()) == 1
    assert run("list", cwd=tmp_path, tokens_file=path).stdout == f"no tokens in {path}\n"


def test_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text('{"tokens": []}')
    unknown = run("revoke", "nobody", cwd=tmp_path, tokens_file=path)
    unset = run("list", cwd=tmp_path)
    for result, message in [(unknown, f"effort tokens: no token named 'nobody' in {path}"),
                            (unset, "effort tokens: set EFFORT_AUTH_TOKENS_FILE or pass --file")]:
        assert result.returncode == 1
        assert result.stderr.splitlines() == [message] and result.stdout == ""
