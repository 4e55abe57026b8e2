"""The token file: tokens shown once and stored as hashes, names and scopes checked, reloads."""

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from service.tokens import SCOPES, TokenFile, add_token, hash_token, list_tokens, revoke_token


def test_add_list_revoke_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    alice = add_token(path, "alice", ["record", "score"])
    bob = add_token(path, "bob.batch-1", ["admin"])
    assert alice.startswith("eff_") and len(alice) > 40 and alice != bob
    entries = list_tokens(path)
    assert [(e.name, e.scopes) for e in entries] == [("alice", ("score", "record")),
                                                      ("bob.batch-1", ("admin",))]
    assert entries[0].sha256 == hash_token(alice)
    assert entries[0].created.endswith("Z")
    revoke_token(path, "alice")
    assert [e.name for e in list_tokens(path)] == ["bob.batch-1"]


def test_only_the_hash_is_stored_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = add_token(path, "alice", ["score"])
    text = path.read_text()
    assert token not in text and token[4:] not in text
    assert json.loads(text)["tokens"][0]["sha256"] == hash_token(token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_name_is_added_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    add_token(path, "alice", ["score"])
    with pytest.raises(ValueError, match="already in"):
        add_token(path, "alice", ["record"])
    assert len(list_tokens(path)) == 1


@pytest.mark.parametrize("name", ["", "-alice", "a b", "a/b", "ä", "a" * 65])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        add_token(tmp_path / "tokens.json", name, ["score"])


@pytest.mark.parametrize("scopes", [["bogus"], ["score", "Admin"], []])
def test_bad_scopes_are_refused(tmp_path: Path, scopes: list[str]) -> None:
    with pytest.raises(ValueError, match="scope"):
        add_token(tmp_path / "tokens.json", "alice", scopes)
    assert not (tmp_path / "tokens.json").exists()
    assert set(SCOPES) == {"score", "record", "admin"}


def test_revoking_an_unknown_name_fails(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    add_token(path, "alice", ["score"])
    with pytest.raises(ValueError, match="no token named 'carol'"):
        revoke_token(path, "carol")


def test_lookup_finds_tokens_and_sees_changes_without_a_new_object(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    alice = add_token(path, "alice", ["score"])
    tokens = TokenFile(path)
    entry = tokens.lookup(alice)
    assert entry is not None and entry.name == "alice" and entry.scopes == ("score",)
    assert tokens.lookup(alice + "x") is None
    bob = add_token(path, "bob", ["record"])
    assert tokens.lookup(bob) is not None
    revoke_token(path, "alice")
    assert tokens.lookup(alice) is None


def test_a_missing_or_malformed_file_is_named_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match="token file") as error:
        TokenFile(missing)
    assert error.value.filename == str(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"tokens": [{"name": "alice"}]}')
    with pytest.raises(ValueError, match=f"token file {broken}, entry 1"):
        TokenFile(broken)
    broken.write_text("not json")
    with pytest.raises(ValueError, match="is not JSON"):
        TokenFile(broken)


def test_a_bad_reload_keeps_the_tokens_and_warns_once(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens.json"
    alice = add_token(path, "alice", ["score"])
    tokens = TokenFile(path)
    path.write_text("{broken")
    with caplog.at_level(logging.WARNING, logger="service.tokens"):
        for _ in range(3):
            assert tokens.lookup(alice) is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeping the 1 tokens" in warnings[0].getMessage()
    caplog.clear()
    os.unlink(path)
    with caplog.at_level(logging.WARNING, logger="service.tokens"):
        assert tokens.lookup(alice) is not None
        assert tokens.lookup(alice) is not None
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    assert all(alice not in r.getMessage() for r in caplog.records)
    bob = add_token(path, "bob", ["score"])
    assert tokens.lookup(bob) is not None and tokens.lookup(alice) is None
