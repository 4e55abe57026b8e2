"""Generated protobuf code matches proto/ (stale effort.v1 code fails here and in make lint)."""

import filecmp
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.generate(tmp_path / "v1")
    committed = ROOT / "proto" / "effort" / "v1"
    names = sorted(p.name for p in (tmp_path / "v1").iterdir())
    assert names == [p.name for p in generate.generated_files(committed)]
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "v1", committed, names, shallow=False)
    assert not mismatch and not errors, f"stale generated code, run make proto: {mismatch}"


def test_public_contract_names_exist() -> None:
    from effort.v1 import admin_service_pb2 as a
    from effort.v1 import journey_service_pb2 as j
    from effort.v1 import scoring_service_pb2 as s

    assert set(s.DESCRIPTOR.services_by_name["ScoringService"].methods_by_name) == {
        "Score", "ScoreBatch"}
    assert set(j.DESCRIPTOR.services_by_name["JourneyService"].methods_by_name) == {"RecordEvents"}
    assert set(a.DESCRIPTOR.services_by_name["AdminService"].methods_by_name) == {
        "GetModel", "ReloadModel"}
    for name in ("customer_id", "contact_id", "channel", "intent", "include_features"):
        assert name in s.ScoreRequest.DESCRIPTOR.fields_by_name
    for name in ("effort_score", "churn_risk", "tier", "reasons", "model_version", "degraded",
                 "features"):
        assert name in s.ScoreResponse.DESCRIPTOR.fields_by_name
    assert s.Tier.Name(0) == "TIER_UNSPECIFIED" and s.Tier.Name(2) == "TIER_SENIOR"
