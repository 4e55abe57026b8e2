"""Watches models_dir/SHADOW: loads the challenger it names (verified as a promotion is) or drops it.

A refused challenger (or an unreadable SHADOW) is counted in effort_shadow_refusals_total,
logged once and tried again only when its folder changes, as the champion's reloader does; the
challenger loaded before keeps shadowing meanwhile.
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from service import metrics
from service.models import ModelBundleError
from service.polling import Poller
from service.reloader import (
    REFUSAL_REASONS,
    Fingerprint,
    describe,
    fingerprint,
    load_served,
    pointed_version,
    refusal_reason,
)
from service.routing import RoutingPolicy
from service.shadow import ShadowScorer
from training.registry import SHADOW_POINTER

log = logging.getLogger(__name__)
for _reason in REFUSAL_REASONS:
    metrics.SHADOW_REFUSALS.labels(reason=_reason)


class ShadowLoader:
    """Polls SHADOW and gives the ShadowScorer the challenger it names, or None.

    No challenger when SHADOW is missing or names the champion (`champion()`, e.g. once the
    challenger was promoted)."""

    def __init__(self, shadow: ShadowScorer, models_dir: Path, expected_features: tuple[str, ...],
                 poll_seconds: float, champion: Callable[[], str],
                 policy: RoutingPolicy | None = None, max_reasons: int = 5) -> None:
        self._shadow = shadow
        self._models_dir = models_dir
        self._expected = expected_features
        self._champion = champion
        self._policy = policy or RoutingPolicy()
        self._max_reasons = max_reasons
        self._refused: dict[str, Fingerprint] = {}
        self._lock = threading.Lock()
        self._poller = Poller(self.check, poll_seconds, "shadow-loader")

    def check(self) -> str:
        """One poll: 'unchanged', 'loaded', 'dropped' or 'refused'."""
        with self._lock:
            return self._check()

    def _check(self) -> str:
        pointer = self._models_dir / SHADOW_POINTER
        try:
            version = pointed_version(self._models_dir, SHADOW_POINTER)
        except ModelBundleError as error:
            return self._refuse(SHADOW_POINTER, fingerprint(pointer), error)
        current = self._shadow.bundle
        if version is None or version == self._champion():
            if current is None:
                return "unchanged"
            self._shadow.set_bundle(None)
            log.info("stopped shadowing model %s (%s)", current.version,
                     "SHADOW removed" if version is None else "it is now the champion")
            return "dropped"
        if current is not None and current.version == version:
            return "unchanged"
        seen = fingerprint(self._models_dir / version)
        if version in self._refused and self._refused[version] == seen:
            return "unchanged"
        try:
            bundle = load_served(self._models_dir, version, self._expected, self._policy,
                                 self._max_reasons)
        except Exception as error:  # any failure is a refusal; the champion is untouched
            return self._refuse(version, seen, error)
        self._refused.pop(version, None)
        self._shadow.set_bundle(bundle)
        log.info("shadowing model %s beside the champion %s", version, self._champion())
        return "loaded"

    def _refuse(self, name: str, seen: Fingerprint, error: BaseException) -> str:
        if name in self._refused and self._refused[name] == seen:
            return "unchanged"
        self._refused[name] = seen
        reason = refusal_reason(error)
        metrics.SHADOW_REFUSALS.labels(reason=reason).inc()
        log.error("refused shadow challenger %s (%s): %s", name, reason, describe(error))
        return "refused"

    def start(self) -> None:
        """Starts polling in a background thread (no-op when the interval is 0)."""
        self._poller.start()

    def stop(self) -> None:
        """Stops polling."""
        self._poller.stop()
