"""The shadow challenger on real bundles: paired scores on the champion's own model inputs, priors
left unpaired, a full queue dropping calls, a killed challenger process costing one pass, and
SHADOW loaded, refused, or dropped by its loader."""

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from features.catalog import MODEL_FEATURES
from features.prediction_log_schema import open_log
from features.store import open_store
from service.challenger_process import ChallengerProcess
from service.feature_reader import FeastFeatureReader
from service.prediction_log import PredictionLog
from service.reloader import load_served
from service.routing import RoutingPolicy
from service.scorer import ScoreInput, Scorer, ScoreResult
from service.shadow import ShadowScorer
from service.shadow_loader import ShadowLoader
from tests.helpers import DemoWorld, wait_until
from training.registry import SHADOW_POINTER, shadow, shadow_off

CUSTOMERS = [f"C{n:06d}" for n in range(1, 31)]


def challenger_copy(models_dir: Path, original: str, name: str) -> Path:
    """A copy of a model folder under another version, sending every contact senior: its scores
    equal the original's, its tiers do not."""
    folder = models_dir / name
    shutil.copytree(models_dir / original, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = name
    manifest["thresholds"] = {"effort_score": 0.0, "churn_risk": 0.0}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def models_dir(demo_world: DemoWorld, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(demo_world.models_dir, copy)
    challenger_copy(copy, demo_world.version, "challenger-1")
    return copy


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_the_challenger_scores_the_champions_inputs_and_logs_the_pairs(
        demo_world: DemoWorld, models_dir: Path, tmp_path: Path) -> None:
    policy = RoutingPolicy()
    champion = load_served(models_dir, demo_world.version, MODEL_FEATURES, policy, 5)
    challenger = load_served(models_dir, "challenger-1", MODEL_FEATURES, policy, 5)
    scorer = Scorer(FeastFeatureReader(open_store(demo_world.repo)), champion)
    results = scorer.score_many([ScoreInput(c, contact_id=f"K-{c}") for c in CUSTOMERS])
    prior = ScoreResult("C999999", "", 10.0, 0.1, False, champion.version, 30, False,
                        degraded_reason="feature store unavailable: test")
    log = PredictionLog(tmp_path / "predictions")
    shadowing = ShadowScorer(policy, 1.0, log)
    assert not shadowing.offer("r1", results)  # no challenger yet: the caller logs
    shadowing.set_bundle(challenger)
    same, different = (_sample("effort_shadow_tier_agreement_total", {"agreement": a})
                       for a in ("same", "different"))
    timed = _sample("effort_shadow_seconds_count")
    assert shadowing.offer("r2", [*results, prior])
    shadowing.close()
    log.close()

    rows = open_log(tmp_path / "predictions").to_table().to_pandas().sort_values("batch_index")
    assert list(rows["__request_id"].unique()) == ["r2"]  # r1 was left to the servicer
    paired, unpaired = rows.iloc[:-1], rows.iloc[-1]
    effort, churn = challenger.predict(np.vstack([r.model_input for r in results
                                                  if r.model_input is not None]))
    assert (paired["challenger_model_version"] == "challenger-1").all()
    np.testing.assert_allclose(paired["challenger_effort_score"], effort)
    np.testing.assert_allclose(paired["challenger_churn_risk"], churn)
    np.testing.assert_allclose(paired["challenger_churn_risk"], paired["churn_risk"])
    assert paired["challenger_senior"].all()  # its thresholds send every contact senior
    assert unpaired["challenger_model_version"] is None
    assert unpaired["challenger_churn_risk"] is None or np.isnan(unpaired["challenger_churn_risk"])
    standard = int((~paired["senior"]).sum())
    assert _sample("effort_shadow_tier_agreement_total", {"agreement": "different"}) \
        == different + standard
    assert _sample("effort_shadow_tier_agreement_total", {"agreement": "same"}) \
        == same + len(paired) - standard
    assert _sample("effort_shadow_seconds_count") == timed + 1
    assert _sample("effort_shadow_info", {"version": "challenger-1"}) == 1


def test_a_full_queue_drops_the_call_and_the_caller_logs_it(
        demo_world: DemoWorld, models_dir: Path) -> None:
    bundle = load_served(models_dir, "challenger-1", MODEL_FEATURES, RoutingPolicy(), 5)
    shadowing = ShadowScorer(queue_rows=2, start=False)
    shadowing.set_bundle(bundle)
    row = ScoreResult("C000001", "", 10.0, 0.1, False, "v", 30, True,
                      model_input=np.zeros(len(MODEL_FEATURES)))
    dropped = _sample("effort_shadow_dropped_total")
    assert shadowing.offer("a", [row, row])
    assert not shadowing.offer("b", [row])
    assert _sample("effort_shadow_dropped_total") == dropped + 1
    shadowing.set_bundle(None)
    assert _sample("effort_shadow_info", {"version": "challenger-1"}) == 0
    assert not shadowing.offer("c", [row])  # no challenger: nothing is queued


def test_the_loader_follows_shadow_and_refuses_a_bad_folder_once(
        demo_world: DemoWorld, models_dir: Path) -> None:
    shadowing = ShadowScorer(start=False)
    loader = ShadowLoader(shadowing, models_dir, MODEL_FEATURES, 0, lambda: demo_world.version)
    assert loader.check() == "unchanged" and shadowing.bundle is None
    shadow(models_dir, "challenger-1")
    assert loader.check() == "loaded"
    assert shadowing.bundle is not None and shadowing.bundle.version == "challenger-1"
    assert loader.check() == "unchanged"

    bad = challenger_copy(models_dir, demo_world.version, "broken")
    (bad / "churn.lgb.txt").write_text("not a model")
    shadow(models_dir, "broken")
    refusals = _sample("effort_shadow_refusals_total", {"reason": "checksum"})
    assert loader.check() == "refused"
    assert loader.check() == "unchanged"  # logged and counted once
    assert _sample("effort_shadow_refusals_total", {"reason": "checksum"}) == refusals + 1
    assert shadowing.bundle.version == "challenger-1"  # the loaded challenger keeps shadowing

    (models_dir / SHADOW_POINTER).write_text(demo_world.version)  # the champion itself
    assert loader.check() == "dropped" and shadowing.bundle is None
    shadow(models_dir, "challenger-1")
    assert loader.check() == "loaded"
    assert shadow_off(models_dir) == "challenger-1"
    assert loader.check() == "dropped" and shadowing.bundle is None


def test_a_pass_the_challenger_process_fails_is_logged_unpaired_and_counted(
        demo_world: DemoWorld, models_dir: Path, tmp_path: Path) -> None:
    policy = RoutingPolicy()
    champion = load_served(models_dir, demo_world.version, MODEL_FEATURES, policy, 5)
    challenger = load_served(models_dir, "challenger-1", MODEL_FEATURES, policy, 5)
    scorer = Scorer(FeastFeatureReader(open_store(demo_world.repo)), champion)

    def results() -> list[ScoreResult]:  # each call its own answers, as the servicer's
        return scorer.score_many([ScoreInput(c) for c in CUSTOMERS[:5]])

    log = PredictionLog(tmp_path / "predictions")
    shadowing = ShadowScorer(policy, 1.0, log, process=ChallengerProcess(policy, retry_seconds=0))
    shadowing.set_bundle(challenger)
    failures = _sample("effort_shadow_failures_total")
    scored = _sample("effort_shadow_seconds_count")
    assert shadowing.offer("before", results())
    wait_until(lambda: _sample("effort_shadow_seconds_count") == scored + 1)
    pid = shadowing.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert shadowing.offer("killed", results())
    wait_until(lambda: _sample("effort_shadow_failures_total") == failures + 1)
    assert shadowing.offer("after", results())  # a new child scores the next pass
    shadowing.close()
    assert shadowing.process.pid is None  # the thread stopped the child as it ended
    log.close()

    rows = open_log(tmp_path / "predictions").to_table().to_pandas()
    paired = rows.groupby("__request_id")["challenger_model_version"].apply(
        lambda versions: set(versions.dropna()))
    assert paired.to_dict() == {"before": {"challenger-1"}, "killed": set(),
                                "after": {"challenger-1"}}
    assert _sample("effort_shadow_seconds_count") == scored + 2
