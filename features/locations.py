"""Where the Feast repository lives, importable without importing Feast (settings need it at once)."""

from pathlib import Path

FEATURE_REPO = Path(__file__).resolve().parent / "feast_repo"
