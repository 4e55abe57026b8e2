"""Hot model reload: watch the CURRENT pointer, validate and warm a new model, then swap it in."""

import logging
import math
import threading
from pathlib import Path

import numpy as np
from prometheus_client import Counter

from service.models import ModelBundle, ModelBundleError, load_bundle
from service.scorer import Scorer
from training.registry import current_version

log = logging.getLogger(__name__)
RELOADS = Counter("effort_model_reloads_total", "Promoted models seen by the server, by outcome.",
                  ["outcome"])
WARM_ROUNDS = 20


def validate(bundle: ModelBundle) -> None:
    """A smoke score: both models answer in range on empty and typical rows; raises otherwise."""
    rows = np.full((8, len(bundle.feature_names)), math.nan)
    rows[4:] = 1.0
    effort, churn = bundle.predict(rows)
    explained = bundle.explain(rows)
    if not (np.isfinite(effort).all() and np.isfinite(churn).all()
            and ((effort >= 0) & (effort <= 100)).all() and ((churn >= 0) & (churn <= 1)).all()
            and np.allclose(explained.effort_score, effort)
            and np.allclose(explained.churn_risk, churn)
            and np.isfinite(explained.effort_contrib).all()
            and np.isfinite(explained.churn_contrib).all()):
        raise ModelBundleError(f"model {bundle.version} failed its smoke score")


def warm(bundle: ModelBundle) -> None:
    """Runs the scoring calls a few times so that the first real call is not the slow one."""
    rows = np.zeros((1, len(bundle.feature_names)))
    for _ in range(WARM_ROUNDS):
        bundle.predict(rows)
        bundle.explain(rows)


class ModelReloader:
    """Polls models_dir/CURRENT; a promoted version that validates replaces the served one."""

    def __init__(self, scorer: Scorer, models_dir: Path, expected_features: tuple[str, ...],
                 poll_seconds: float) -> None:
        self._scorer = scorer
        self._models_dir = models_dir
        self._expected = expected_features
        self._poll = poll_seconds
        self._refused: str | None = None
        self.polls = 0  # completed background polls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-reloader", daemon=True)

    def check(self) -> str:
        """One poll: 'unchanged', 'swapped' or 'refused'."""
        version = current_version(self._models_dir)
        if version is None or version in (self._scorer.bundle.version, self._refused):
            return "unchanged"
        try:
            bundle = load_bundle(self._models_dir / version, self._expected)
            validate(bundle)
            warm(bundle)
        except (ModelBundleError, OSError, ValueError, KeyError) as error:
            self._refused = version
            RELOADS.labels(outcome="refused").inc()
            log.error("refused model %s, still serving %s: %s", version,
                      self._scorer.bundle.version, error)
            return "refused"
        self._scorer.swap(bundle)
        self._refused = None
        RELOADS.labels(outcome="swapped").inc()
        log.info("now serving model %s", version)
        return "swapped"

    def start(self) -> None:
        """Starts polling in a background thread (no-op when the interval is 0)."""
        if self._poll > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stops polling."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.check()
            except Exception:  # never let the watcher die
                log.exception("model reload check failed")
            self.polls += 1
