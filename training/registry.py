"""The model registry: versioned folders under models_dir, a CURRENT pointer and its history.

`promote` points CURRENT at a version and pushes it on PROMOTIONS; `rollback` pops the latest
promotion and points CURRENT at the one before; `shadow` points SHADOW at a challenger that
servers score beside the champion, off the call path. Training writes here; running servers read
CURRENT and SHADOW (service/reloader.py, service/shadow_loader.py).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.model_folder import MANIFEST, ModelFolderError, read_manifest

CURRENT_POINTER = "CURRENT"
PROMOTIONS = "PROMOTIONS"
SHADOW_POINTER = "SHADOW"


@dataclass(frozen=True)
class VersionInfo:
    """One model version as the registry lists it."""

    version: str
    created_at: str
    metrics: dict[str, Any]
    synthetic_data: bool
    current: bool
    shadow: bool = False


def current_version(models_dir: Path) -> str | None:
    """The promoted version, or None when nothing was promoted."""
    pointer = models_dir / CURRENT_POINTER
    return pointer.read_text().strip() or None if pointer.is_file() else None


def current_folder(models_dir: Path) -> Path:
    """The promoted model folder."""
    version = current_version(models_dir)
    if version is None:
        raise ModelFolderError(f"no promoted model in {models_dir}: run `effort train --promote`")
    return models_dir / version


def list_versions(models_dir: Path) -> list[VersionInfo]:
    """Every complete model folder, oldest first."""
    current = current_version(models_dir)
    shadowing = shadow_version(models_dir)
    versions = []
    for manifest_path in sorted(models_dir.glob(f"*/{MANIFEST}")):
        manifest = read_manifest(manifest_path.parent)
        versions.append(VersionInfo(manifest["version"], manifest["created_at"],
                                    manifest.get("metrics", {}),
                                    bool(manifest.get("synthetic_data")),
                                    manifest["version"] == current,
                                    manifest["version"] == shadowing))
    return versions


def _history(models_dir: Path) -> list[str]:
    path = models_dir / PROMOTIONS
    return path.read_text().split() if path.is_file() else []


def _write(models_dir: Path, name: str, text: str) -> None:
    tmp = models_dir / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(models_dir / name)  # atomic: readers see the old or the new pointer


def _point(models_dir: Path, version: str, history: list[str]) -> None:
    _write(models_dir, PROMOTIONS, "\n".join(history) + "\n")
    _write(models_dir, CURRENT_POINTER, version + "\n")


def check_servable(models_dir: Path, version: str, purpose: str) -> None:
    """Raises ModelFolderError unless `version` is a complete, non-degenerate model folder."""
    if not (models_dir / version / MANIFEST).is_file():
        raise ModelFolderError(f"no model version {version} in {models_dir} "
                               "(see `effort models list`)")
    degenerate = read_manifest(models_dir / version).get("metrics", {}).get("degenerate")
    if degenerate:
        raise ModelFolderError(f"model {version} is degenerate and is not {purpose}: "
                               f"{'; '.join(degenerate)}")


def promote(models_dir: Path, version: str) -> None:
    """Serves `version` from now on (running servers switch within their poll interval)."""
    check_servable(models_dir, version, "promoted")
    _point(models_dir, version, [*_history(models_dir), version])


def shadow_version(models_dir: Path) -> str | None:
    """The challenger SHADOW names, or None when no shadow is set."""
    pointer = models_dir / SHADOW_POINTER
    return pointer.read_text().strip() or None if pointer.is_file() else None


def shadow(models_dir: Path, version: str) -> None:
    """Has running servers score `version` beside the champion, off the call path (within their
    poll interval)."""
    check_servable(models_dir, version, "shadowed")
    if version == current_version(models_dir):
        raise ModelFolderError(f"model {version} is the champion (CURRENT); shadow another "
                               "version")
    _write(models_dir, SHADOW_POINTER, version + "\n")


def shadow_off(models_dir: Path) -> str | None:
    """Removes SHADOW; returns the version it named, None when there was none."""
    version = shadow_version(models_dir)
    (models_dir / SHADOW_POINTER).unlink(missing_ok=True)
    return version


def rollback(models_dir: Path) -> str:
    """Returns to the version promoted before the current one; returns that version."""
    history = _history(models_dir)
    if len(history) < 2:
        raise ModelFolderError("nothing to roll back to: fewer than two promotions recorded")
    _point(models_dir, history[-2], history[:-1])
    return history[-2]
