"""The official specifications and recordings the tests check against, vendored in
``tests/specs/`` (see its README for where each came from)."""

from __future__ import annotations

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"


def spec_path(*parts: str) -> Path:
    path = SPECS_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"vendored spec {path} is missing from the repository (see tests/specs/README.md)")
    return path
