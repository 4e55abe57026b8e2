"""The SHADOW pointer: written atomically beside CURRENT, refused for missing, degenerate or champion
versions, removed by --off, marked in the listing, and read by servers as CURRENT is."""

import json
from pathlib import Path

import pytest

from service.cli import main
from service.models import ModelBundleError
from service.reloader import pointed_version
from training.model_folder import ModelFolderError
from training.registry import (
    SHADOW_POINTER,
    list_versions,
    promote,
    shadow,
    shadow_off,
    shadow_version,
)


def _folder(models_dir: Path, version: str, degenerate: list[str] | None = None) -> None:
    (models_dir / version).mkdir(parents=True)
    (models_dir / version / "manifest.json").write_text(json.dumps({
        "version": version, "created_at": "2026-01-01T00:00:00+00:00",
        "metrics": {"degenerate": degenerate or []}}))


def test_shadow_points_at_a_version_and_off_removes_it(tmp_path: Path) -> None:
    for version in ("v1", "v2"):
        _folder(tmp_path, version)
    promote(tmp_path, "v1")
    assert shadow_version(tmp_path) is None and shadow_off(tmp_path) is None
    shadow(tmp_path, "v2")
    assert (tmp_path / SHADOW_POINTER).read_text() == "v2\n"
    assert shadow_version(tmp_path) == pointed_version(tmp_path, SHADOW_POINTER) == "v2"
    assert not list(tmp_path.glob(".*.tmp"))  # written under a dot-name, then renamed
    assert [(v.version, v.current, v.shadow) for v in list_versions(tmp_path)] == [
        ("v1", True, False), ("v2", False, True)]
    assert shadow_off(tmp_path) == "v2"
    assert shadow_version(tmp_path) is None
    assert [v.shadow for v in list_versions(tmp_path)] == [False, False]


def test_missing_degenerate_or_champion_versions_are_refused(tmp_path: Path) -> None:
    _folder(tmp_path, "v1")
    _folder(tmp_path, "flat", degenerate=["churn model predicts one value"])
    promote(tmp_path, "v1")
    with pytest.raises(ModelFolderError, match="no model version v9"):
        shadow(tmp_path, "v9")
    with pytest.raises(ModelFolderError, match="degenerate and is not shadowed"):
        shadow(tmp_path, "flat")
    with pytest.raises(ModelFolderError, match="is the champion"):
        shadow(tmp_path, "v1")
    assert not (tmp_path / SHADOW_POINTER).exists()


def test_a_corrupt_shadow_pointer_is_a_pointer_refusal(tmp_path: Path) -> None:
    (tmp_path / SHADOW_POINTER).write_text("../elsewhere\n")
    with pytest.raises(ModelBundleError) as refused:
        pointed_version(tmp_path, SHADOW_POINTER)
    assert refused.value.reason == "pointer"


def test_the_command_refuses_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EFFORT_MODELS_DIR", str(tmp_path))
    _folder(tmp_path, "v1")
    promote(tmp_path, "v1")
    assert main(["models", "shadow", "v9"]) == 1
    assert main(["models", "shadow"]) == 1
    assert main(["models", "shadow", "v1"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(line.startswith("effort models: ") for line in errors)
    assert main(["models", "shadow", "--off"]) == 0
    assert capsys.readouterr().out == "no shadow was set\n"
