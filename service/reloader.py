"""Model loading for serving: start-up with a fallback, and hot reload of a promoted model.

A model is served only after its folder verifies (manifest schema, checksums, features, name equal
to its version), it passes a smoke score through the whole Score path and is warmed. Any failure
is a refusal: counted by reason, logged once, and not retried until the folder changes.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import Counter

from features.catalog import MODEL_FEATURES
from features.model_input import ContactContext, input_vector
from service import metrics
from service.actions import ActionPlanner
from service.models import ModelBundle, ModelBundleError, load_bundle
from service.polling import Poller
from service.reasons import choose_reasons
from service.responses import score_response
from service.routing import Router, RoutingPolicy
from service.scorer import Scorer, ScoreResult
from training.registry import CURRENT_POINTER, PROMOTIONS

log = logging.getLogger(__name__)
RELOADS = Counter("effort_model_reloads_total", "Promoted models seen by the server, by outcome.",
                  ["outcome"])
for _outcome in ("swapped", "refused"):
    RELOADS.labels(outcome=_outcome)
# The reasons a load can be refused for (ModelBundleError.reason, or "error" for anything else).
REFUSAL_REASONS = ("pointer", "missing", "manifest", "checksum", "version_mismatch", "features",
                   "model_file", "smoke_test", "error")
for _reason in REFUSAL_REASONS:
    metrics.MODEL_RELOAD_REFUSALS.labels(reason=_reason)
WARM_ROUNDS = 20
# Arriving contacts scored from an empty history by the smoke score: none, voice, chat, web.
SMOKE_CONTACTS = (ContactContext(), ContactContext(1, "billing", 95.0, 4),
                  ContactContext(2, "cancel", 600.0, 0), ContactContext(5, "", 0.0, 0))
# What a poll saw of a folder or of CURRENT: (name, size, mtime) of each file; None when absent.
Fingerprint = tuple[tuple[str, int, int], ...] | None
# A refused name (a version, or CURRENT itself) and what its folder or file looked like then.
Refusal = tuple[str, Fingerprint]


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
        raise ModelBundleError(f"model {bundle.version} failed its smoke score", "smoke_test")


def smoke_score(bundle: ModelBundle, policy: RoutingPolicy, max_reasons: int) -> None:
    """The Score path without a feature store: empty-history contacts and synthetic rows through
    both models, routing (as scored and as if senior), reasons, the next best action, responses,
    and a degraded answer from the priors. Raises ModelBundleError (`smoke_test`) on any fault."""
    try:
        validate(bundle)
        _score_synthetic_rows(bundle, policy, max_reasons)
    except ModelBundleError:
        raise
    except Exception as error:
        raise ModelBundleError(f"model {bundle.version} failed its smoke score: "
                               f"{describe(error)}", "smoke_test") from None


def _score_synthetic_rows(bundle: ModelBundle, policy: RoutingPolicy, max_reasons: int) -> None:
    if bundle.feature_names != MODEL_FEATURES:
        raise ModelBundleError(f"model {bundle.version} does not take the model input "
                               "features/model_input.py builds", "features")
    now = time.time()
    empty = [input_vector([], now, contact, half_life_days=bundle.effort_half_life_days)
             for contact in SMOKE_CONTACTS]
    width = len(MODEL_FEATURES)
    matrix = np.vstack([*empty, np.full(width, math.nan), np.ones(width), np.full(width, 5.0)])
    explained = bundle.explain(matrix)
    router = Router(policy, bundle)
    planner = ActionPlanner(bundle) if policy.next_best_action else None
    actions = (planner.best(matrix, explained.churn_risk) if planner
               else [None] * len(matrix))
    for j, vector in enumerate(matrix):
        effort, churn = float(explained.effort_score[j]), float(explained.churn_risk[j])
        for scores in ((effort, churn), (100.0, 1.0)):  # as scored, then certainly senior
            decision = router.decide(vector, *scores)
            reasons = choose_reasons(vector, explained.effort_contrib[j],
                                     explained.churn_contrib[j], max_reasons,
                                     decision.rule_reasons, require_one=decision.senior)
            if not (math.isfinite(decision.value_at_risk)
                    and all(math.isfinite(r.contribution) and r.code for r in reasons)):
                raise ModelBundleError(f"model {bundle.version} failed its smoke score: "
                                       "routing or reasons out of range", "smoke_test")
            score_response(ScoreResult(
                customer_id="SMOKE", contact_id="", effort_score=effort, churn_risk=churn,
                senior=decision.senior, model_version=bundle.version,
                churn_horizon_days=bundle.churn_horizon_days, customer_known=False,
                reasons=reasons, value_at_risk=decision.value_at_risk,
                next_best_action=actions[j],
                features={name: float(v) for name, v in zip(MODEL_FEATURES, vector, strict=True)
                          if not math.isnan(v)}))
    score_response(ScoreResult(  # a degraded answer: the priors
        customer_id="SMOKE", contact_id="", effort_score=bundle.prior_effort_score,
        churn_risk=bundle.prior_churn_risk, senior=False, model_version=bundle.version,
        churn_horizon_days=bundle.churn_horizon_days, customer_known=False,
        degraded_reason="feature store unavailable: smoke score"))


def warm(bundle: ModelBundle) -> None:
    """Runs the scoring calls a few times so that the first real call is not the slow one."""
    rows = np.zeros((1, len(bundle.feature_names)))
    for _ in range(WARM_ROUNDS):
        bundle.predict(rows)
        bundle.explain(rows)


def describe(error: BaseException) -> str:
    """One readable line for a load failure (the type too when it is not one of ours)."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(error, ModelBundleError):
        return first or "refused"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def refusal_reason(error: BaseException) -> str:
    """The label of effort_model_reload_refusals_total for a load failure."""
    return error.reason if isinstance(error, ModelBundleError) else "error"


def fingerprint(path: Path) -> Fingerprint:
    """(name, size, mtime) of a folder's files, or of one file; None when it cannot be seen."""
    try:
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        return tuple((file.name, stat.st_size, stat.st_mtime_ns)
                     for file in files for stat in (file.stat(),))
    except OSError:
        return None


def pointed_version(models_dir: Path, name: str = CURRENT_POINTER) -> str | None:
    """The version CURRENT (or pointer `name`) names, None when there is no such file;
    ModelBundleError (`pointer`) when it cannot be read or does not hold a version name."""
    pointer = models_dir / name
    if not pointer.exists():
        return None
    try:
        version = pointer.read_text().strip()
    except (OSError, UnicodeError) as error:
        raise ModelBundleError(f"{pointer} cannot be read: {describe(error)}", "pointer") from None
    if not version or version.startswith(".") or any(
            c.isspace() or c in "/\\" for c in version):
        raise ModelBundleError(f"{pointer} does not hold a model version: {version[:40]!r}",
                               "pointer")
    return version


def promotions(models_dir: Path) -> list[str]:
    """Promoted versions in PROMOTIONS, newest first, each once; empty when unreadable."""
    try:
        history = (models_dir / PROMOTIONS).read_text().split()
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(reversed(history)))


def load_served(models_dir: Path, version: str, expected_features: tuple[str, ...],
                policy: RoutingPolicy, max_reasons: int) -> ModelBundle:
    """The verified, smoke-scored and warmed model of folder `version`; raises on any fault."""
    bundle = load_bundle(models_dir / version, expected_features)
    if bundle.version != version:
        raise ModelBundleError(f"folder {version} holds model {bundle.version}: a model folder "
                               "must carry its version's name", "version_mismatch")
    smoke_score(bundle, policy, max_reasons)
    warm(bundle)
    return bundle


def load_at_start(models_dir: Path, expected_features: tuple[str, ...], policy: RoutingPolicy,
                  max_reasons: int) -> tuple[ModelBundle, Refusal | None]:
    """The model CURRENT names or, when it cannot be served, the newest valid earlier promotion
    (one WARNING line); with the refusal, for the reloader not to repeat it. Raises
    ModelBundleError with one line when no model at all can be served."""
    version: str | None = None
    refused: Refusal = (CURRENT_POINTER, fingerprint(models_dir / CURRENT_POINTER))
    try:
        version = pointed_version(models_dir)
        if version is None:
            raise ModelBundleError(f"no promoted model in {models_dir}: run "
                                   "`effort train --promote`", "missing")
        refused = (version, fingerprint(models_dir / version))
        return load_served(models_dir, version, expected_features, policy, max_reasons), None
    except Exception as error:  # any failure: fall back to an earlier promotion
        failure = error
    earlier = [v for v in promotions(models_dir) if v != version]
    for candidate in earlier:
        try:
            bundle = load_served(models_dir, candidate, expected_features, policy, max_reasons)
        except Exception:  # the next older promotion is tried
            continue
        metrics.MODEL_RELOAD_REFUSALS.labels(reason=refusal_reason(failure)).inc()
        log.warning("the model CURRENT names cannot be served (%s): %s; serving %s, the newest "
                    "valid earlier promotion", refusal_reason(failure), describe(failure),
                    candidate)
        return bundle, refused
    tail = "; no earlier promotion in PROMOTIONS can be served either" if earlier else ""
    raise ModelBundleError(f"{describe(failure)}{tail}", refusal_reason(failure))


@dataclass(frozen=True)
class ReloadResult:
    """What one look at CURRENT did."""

    outcome: str  # unchanged, swapped or refused
    current_version: str  # the version CURRENT names; "" when missing or unreadable
    refusal: str  # why that version is not served, when it is not


class ModelReloader:
    """Polls models_dir/CURRENT; a promoted version that validates replaces the served one.

    A refused version (or an unreadable CURRENT) is remembered with its folder's fingerprint and
    tried again only when the folder changes."""

    def __init__(self, scorer: Scorer, models_dir: Path, expected_features: tuple[str, ...],
                 poll_seconds: float, policy: RoutingPolicy | None = None, max_reasons: int = 5,
                 refused: Refusal | None = None) -> None:
        self._scorer = scorer
        self._models_dir = models_dir
        self._expected = expected_features
        self._policy = policy or RoutingPolicy()
        self._max_reasons = max_reasons
        self._refused: dict[str, Fingerprint] = dict([refused] if refused else [])
        self._refusals: dict[str, str] = {}  # why each refused name was refused
        self._lock = threading.Lock()  # the poller and AdminService.ReloadModel both check
        self._poller = Poller(self.check, poll_seconds, "model-reloader")

    def check(self) -> str:
        """One poll: 'unchanged', 'swapped' or 'refused'."""
        with self._lock:
            return self._check()

    def reload_now(self) -> ReloadResult:
        """One poll now, with what CURRENT names and why it is not served when it is not."""
        with self._lock:
            outcome = self._check()
            try:
                current = pointed_version(self._models_dir) or ""
            except ModelBundleError as error:
                return ReloadResult(outcome, "", describe(error))
            refusal = "" if current == self._scorer.bundle.version else self._refusals.get(
                current, "CURRENT is missing" if not current else "")
            return ReloadResult(outcome, current, refusal)

    def _check(self) -> str:
        try:
            version = pointed_version(self._models_dir)
        except ModelBundleError as error:
            return self._refuse(CURRENT_POINTER, self._models_dir / CURRENT_POINTER, error)
        if version is None or version == self._scorer.bundle.version:
            return "unchanged"
        folder = self._models_dir / version
        seen = fingerprint(folder)
        if version in self._refused and self._refused[version] == seen:
            return "unchanged"
        try:
            bundle = load_served(self._models_dir, version, self._expected, self._policy,
                                 self._max_reasons)
            self._scorer.swap(bundle)
        except Exception as error:  # any failure is a refusal; the old model keeps serving
            return self._refuse(version, folder, error, seen)
        self._refused.pop(version, None)
        RELOADS.labels(outcome="swapped").inc()
        log.info("now serving model %s", version)
        return "swapped"

    def _refuse(self, name: str, path: Path, error: BaseException,
                seen: Fingerprint = None) -> str:
        """Counts and logs a refusal once per state of the refused folder or pointer."""
        seen = seen if seen is not None else fingerprint(path)
        if name in self._refused and self._refused[name] == seen:
            return "unchanged"
        self._refused[name] = seen
        self._refusals[name] = describe(error)
        reason = refusal_reason(error)
        RELOADS.labels(outcome="refused").inc()
        metrics.MODEL_RELOAD_REFUSALS.labels(reason=reason).inc()
        log.error("refused model %s (%s), still serving %s: %s", name, reason,
                  self._scorer.bundle.version, describe(error))
        return "refused"

    @property
    def polls(self) -> int:
        """Completed background polls."""
        return self._poller.polls

    def start(self) -> None:
        """Starts polling in a background thread (no-op when the interval is 0)."""
        self._poller.start()

    def stop(self) -> None:
        """Stops polling."""
        self._poller.stop()
