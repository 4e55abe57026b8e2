"""Runs a check every few seconds in a background thread until stopped; a failing check is logged
and the polling goes on."""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    """Calls `check` every `seconds` in a daemon thread named `name`; 0 seconds never starts."""

    def __init__(self, check: Callable[[], object], seconds: float, name: str) -> None:
        self._check = check
        self._seconds = seconds
        self._name = name
        self.polls = 0  # completed polls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Starts polling (no-op when the interval is 0)."""
        if self._seconds > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stops polling and waits for the thread a little."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._check()
            except Exception:  # never let the watcher die
                log.exception("%s check failed", self._name)
            self.polls += 1
