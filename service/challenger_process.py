"""The shadow challenger's models in a child process of their own, at idle CPU priority.

Scored in the server's process, the challenger competed with calls for the interpreter lock and
the CPU: with every call shadowed the champion's Score p99 rose 7-19% on the 2-core development
machine (BENCHMARKS.md). In its own process at idle priority (service/challenger_child.py) it
runs on the CPU time the server leaves over. A child that dies, does not answer within its
timeout, or refuses the folder is stopped: that pass is logged without challenger scores, and
the next start waits `retry_seconds`.
"""

import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from service.routing import RoutingPolicy

SCORE_TIMEOUT_SECONDS = 10.0
# A load imports the libraries and verifies the folder, on idle CPU time.
LOAD_TIMEOUT_SECONDS = 60.0
RETRY_SECONDS = 5.0
STOP_SECONDS = 2.0
# A server's multiprocess metrics folder is its own: a child writing there would add series.
_NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR",)


class ChallengerFailed(RuntimeError):
    """The challenger process could not score a pass (ended, timed out, refused or failed)."""


class ChallengerPaused(ChallengerFailed):
    """A pass not tried: the challenger process failed less than `retry_seconds` ago."""


@dataclass(frozen=True)
class Scored:
    """The challenger's scores and tiers of a pass's rows, and the time its process took."""

    effort: np.ndarray
    churn: np.ndarray
    seniors: np.ndarray
    seconds: float


class ChallengerProcess:
    """One child process holding the challenger bundle; used from one thread (the shadow's)."""

    def __init__(self, policy: RoutingPolicy, *,
                 timeout: float = SCORE_TIMEOUT_SECONDS, load_timeout: float = LOAD_TIMEOUT_SECONDS,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self._policy = policy.model_dump(mode="json")
        self._timeout = timeout
        self._load_timeout = load_timeout
        self._retry_seconds = retry_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._loaded: Path | None = None
        self._retry_at = 0.0

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return None if self._process is None else self._process.pid

    def score(self, folder: Path, version: str, matrix: np.ndarray) -> Scored:
        """The challenger of `folder` (model `version`) on `matrix`'s rows; starts the child or
        loads the folder first when needed. Raises ChallengerFailed, and stops the child."""
        if time.monotonic() < self._retry_at:
            raise ChallengerPaused("the challenger process failed less than "
                                   f"{self._retry_seconds:.0f} s ago")
        try:
            if self._loaded != folder:
                reply = self._ask(("load", str(folder), self._policy), self._load_timeout)
                if reply != ("loaded", version):
                    raise ChallengerFailed(f"loading {folder.name}: {reply[1]}")
                self._loaded = folder
            reply = self._ask(("score", matrix), self._timeout)
            if reply[0] != "scored":
                raise ChallengerFailed(str(reply[1]))
            return Scored(*reply[1:])
        except ChallengerFailed:
            self.close()
            self._retry_at = time.monotonic() + self._retry_seconds
            raise

    def _ask(self, message: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
        try:
            connection = self._connection or self._start()
            connection.send(message)  # a pass larger than the socket's buffer waits for the child
            if not connection.poll(timeout):
                raise ChallengerFailed(f"the challenger process did not answer within {timeout:.0f} s")
            reply: tuple[Any, ...] = connection.recv()
            return reply
        except BlockingIOError:  # the send timeout: the child stopped reading
            raise ChallengerFailed("the challenger process did not take the pass within "
                                   f"{self._timeout:.0f} s") from None
        except (EOFError, OSError) as error:
            process = self._process
            code = None if process is None else process.poll()
            raise ChallengerFailed(f"the challenger process ended (exit code {code}): "
                                   f"{type(error).__name__}") from None

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        seconds = int(self._timeout)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack(
            "ll", seconds, int((self._timeout - seconds) * 1_000_000)))
        environment = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "service.challenger_child", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=environment, stdin=subprocess.DEVNULL)
        self._connection = Connection(ours.detach())
        self._loaded = None
        return self._connection

    def close(self) -> None:
        """Stops the child: its end of the pipe closes, and it is killed if it lingers."""
        connection, process = self._connection, self._process
        self._connection = self._process = None
        self._loaded = None
        if connection is not None:
            connection.close()
        if process is not None:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
