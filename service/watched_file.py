"""A file read at start and re-read when it changes; a change that cannot be read keeps the
contents read before, with one WARNING line per failing version of the file."""

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from service.error_text import one_line

T = TypeVar("T")
Signature = tuple[int, int, int]
_MISSING: Signature = (-1, -1, -1)  # the signature of a file that cannot be stat'ed


def file_signature(path: Path, what: str) -> Signature:
    """What changes when the file is rewritten or replaced: (st_mtime_ns, st_size, st_ino);
    OSError naming `what` and the file when it cannot be stat'ed."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise OSError(error.errno, f"cannot read {what} ({error.strerror})", str(path)) from None
    return status.st_mtime_ns, status.st_size, status.st_ino


class WatchedFile(Generic[T]):
    """`load(path)`'s result, kept current: one os.stat per `current()` call.

    The file must be readable and loadable at start (`load`'s OSError or ValueError). `what`
    names the file in messages ("token file"), `noun` what `count` counts in it ("tokens");
    lines go to `log`, the owner's logger."""

    def __init__(self, path: Path, load: Callable[[Path], T], what: str,
                 count: Callable[[T], int], noun: str, log: logging.Logger) -> None:
        self.path = path
        self._load = load
        self._what = what
        self._count = count
        self._noun = noun
        self._log = log
        # The signature before reading: a change made while reading is seen at the next call.
        self._signature = file_signature(path, what)
        self._value = load(path)
        self._failed: Signature | None = None
        self._lock = threading.RLock()

    def current(self) -> T:
        """The contents of the latest version of the file that could be read."""
        try:
            signature = file_signature(self.path, self._what)
        except OSError as error:
            self._failure(_MISSING, error)
            return self._value
        if signature == self._signature:
            if self._failed is not None:
                self._failed = None
            return self._value
        if signature == self._failed:
            return self._value
        with self._lock:
            if signature == self._signature:
                return self._value
            try:
                value = self._load(self.path)
            except (OSError, ValueError) as error:
                self._failure(signature, error)
                return self._value
            self._value, self._signature, self._failed = value, signature, None
        self._log.info("%s %s re-read: %d %s", self._what, self.path, self._count(value),
                       self._noun)
        return value

    def _failure(self, signature: Signature, error: Exception) -> None:
        """Logs one WARNING per failing version of the file (or while it is missing)."""
        if signature == self._failed:
            return
        with self._lock:
            if signature == self._failed:
                return
            self._failed = signature
        self._log.warning("keeping the %d %s read before: %s", self._count(self._value),
                          self._noun, one_line(error))
