"""The bearer-token file (EFFORT_AUTH_TOKENS_FILE): names, scopes and SHA-256 hashes of tokens."""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from service.watched_file import WatchedFile

log = logging.getLogger(__name__)

SCOPES = ("score", "record", "admin")
TOKEN_PREFIX = "eff_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
FILE_MODE = 0o600


@dataclass(frozen=True)
class TokenEntry:
    """One client's token as the file keeps it: never the token itself, only its hash."""

    name: str
    sha256: str
    scopes: tuple[str, ...]
    created: str

    def as_json(self) -> dict[str, object]:
        """The entry as it is written to the file."""
        return {"name": self.name, "sha256": self.sha256, "scopes": list(self.scopes),
                "created": self.created}


def hash_token(token: str) -> str:
    """The SHA-256 hex digest the file keeps of a token.

    Tokens are 256 random bits, so a plain (unsalted, fast) hash is right: nobody can guess a
    preimage, and a slow password hash would only cost time on every call."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    """The name, or ValueError when it is not 1-64 letters, digits, '.', '_' or '-' (letter or
    digit first)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"token name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit")
    return name


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes without repeats in SCOPES order, or ValueError when one is unknown or none given."""
    given = [scope.strip() for scope in scopes]
    unknown = sorted({scope for scope in given if scope not in SCOPES})
    if unknown:
        raise ValueError(f"unknown scope {', '.join(map(repr, unknown))}: "
                         f"scopes are {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"give at least one scope of {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in given)


def read_tokens(path: Path) -> list[TokenEntry]:
    """The entries of a token file; OSError when it cannot be read, ValueError (naming the file)
    when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise OSError(error.errno, f"cannot read token file ({error.strerror})", str(path)) from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"token file {path} is not JSON: {error}") from None
    return _parse(path, document)


def _parse(path: Path, document: object) -> list[TokenEntry]:
    if not isinstance(document, dict) or not isinstance(document.get("tokens"), list):
        raise ValueError(f'token file {path} is not an object with a "tokens" list')
    entries: list[TokenEntry] = []
    names: set[str] = set()
    hashes: set[str] = set()
    for number, item in enumerate(document["tokens"], start=1):
        where = f"token file {path}, entry {number}"
        if not isinstance(item, dict):
            raise ValueError(f"{where} is not an object")
        name, digest, scopes, created = (item.get(k) for k in ("name", "sha256", "scopes", "created"))
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{where}: name is missing or not allowed")
        if not isinstance(digest, str) or not _SHA256_PATTERN.fullmatch(digest):
            raise ValueError(f"{where} ({name}): sha256 is not 64 lowercase hex digits")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ValueError(f"{where} ({name}): scopes is not a list of strings")
        if not isinstance(created, str):
            raise ValueError(f"{where} ({name}): created is not a string")
        try:
            checked = check_scopes(scopes)
        except ValueError as error:
            raise ValueError(f"{where} ({name}): {error}") from None
        if name in names:
            raise ValueError(f"{where}: name {name!r} occurs twice")
        if digest in hashes:
            raise ValueError(f"{where} ({name}): the same token hash occurs twice")
        names.add(name)
        hashes.add(digest)
        entries.append(TokenEntry(name, digest, checked, created))
    return entries


def list_tokens(path: Path) -> list[TokenEntry]:
    """The entries of the token file, in the order they were added."""
    return read_tokens(path)


def add_token(path: Path, name: str, scopes: Iterable[str]) -> str:
    """Adds a client and returns its new token, which exists nowhere else: show it once.

    The file is created (mode 0600) when missing; a name already in it is a ValueError."""
    check_name(name)
    checked = check_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with _locked(path):
        entries = read_tokens(path) if path.exists() else []
        if any(entry.name == name for entry in entries):
            raise ValueError(f"token name {name!r} is already in {path}; revoke it first")
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        entries.append(TokenEntry(name, hash_token(token), checked, created))
        _write(path, entries)
    return token


def revoke_token(path: Path, name: str) -> None:
    """Removes a client's token from the file; an unknown name is a ValueError."""
    with _locked(path):
        entries = read_tokens(path)
        kept = [entry for entry in entries if entry.name != name]
        if len(kept) == len(entries):
            raise ValueError(f"no token named {name!r} in {path}")
        _write(path, kept)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on PATH.lock, so that two commands changing the file at once do
    not lose one's change (readers never take it: they see whole files thanks to os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)  # releases the lock


def _write(path: Path, entries: list[TokenEntry]) -> None:
    """Writes the file atomically: a temporary file (mode 0600) in its folder, then os.replace."""
    text = json.dumps({"tokens": [entry.as_json() for entry in entries]}, indent=2) + "\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class TokenFile:
    """The server's view of the token file: looks tokens up by hash, re-reading the file when it
    changes (one os.stat per lookup).

    The file must be readable and well-formed at start (OSError or ValueError naming it). A later
    change that cannot be read keeps the tokens read before, with one WARNING line per change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_hash = WatchedFile(path, _index, "token file", len, "tokens", log)

    def lookup(self, token: str) -> TokenEntry | None:
        """The entry of this token, or None when the file does not hold it (unknown or revoked)."""
        # A dict lookup by hash: what varies with the guess is a hash of it, which tells an
        # attacker nothing about stored hashes' preimages.
        return self._by_hash.current().get(hash_token(token))


def _index(path: Path) -> dict[str, TokenEntry]:
    return {entry.sha256: entry for entry in read_tokens(path)}
