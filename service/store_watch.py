"""Watches the stores' load marker: a store that lost its data is flagged in answers, a metric
and the log until it is loaded again."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from features.recorder import STORE_ERRORS
from features.state import JourneyState
from service import metrics
from service.polling import Poller

log = logging.getLogger(__name__)


class StoreWatch:
    """Reads the load marker every `poll_seconds` and reports each change through `on_change`
    (the degraded reason for every answer, or "" when the store holds its data again).

    A marker seen once and then gone means the store lost its data (for example a Redis
    restarted empty): every customer would look new, so answers are flagged instead of being
    served silently from an empty store. A store never loaded has no marker; that is logged at
    start but not flagged, as nothing was lost that this server knew of.
    """

    def __init__(self, state: JourneyState, on_change: Callable[[str], None],
                 poll_seconds: float) -> None:
        self._state = state
        self._on_change = on_change
        self._expected: float | None = None
        self._lost = False
        self._poller = Poller(self.check, poll_seconds, "store-watch")
        metrics.STORE_DATA_LOST.set(0)

    def check(self) -> None:
        """One look at the marker; a store that cannot be read is left to the circuit breaker."""
        try:
            marker = self._state.loaded_at()
        except STORE_ERRORS:
            return
        if marker is None and self._expected is not None and not self._lost:
            self._lost = True
            metrics.STORE_DATA_LOST.set(1)
            reason = (f"feature store lost its data: its load marker of {_when(self._expected)} "
                      "is gone; answering from priors until it is loaded again (effort ingest)")
            log.error("%s", reason)
            self._on_change(reason)
        elif marker is not None and marker != self._expected:
            self._expected = marker
            if self._lost:
                self._lost = False
                metrics.STORE_DATA_LOST.set(0)
                log.warning("feature store loaded again at %s: answering from it", _when(marker))
                self._on_change("")

    def start(self) -> None:
        """Looks once now, then every `poll_seconds` in a background thread (0: only now)."""
        self.check()
        if self._expected is None:
            log.warning("the feature store has no load marker: it was never loaded with a whole "
                        "history (effort ingest or effort train), or it lost its data")
        self._poller.start()

    def stop(self) -> None:
        """Stops watching."""
        self._poller.stop()


def _when(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")
