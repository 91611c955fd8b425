"""Where the official specs live: ``$FIREBREAK_SHARED_DIR`` or ``../shared`` beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("FIREBREAK_SHARED_DIR", REPO_ROOT.parent / "shared"))
SPECS_DIR = SHARED_DIR / "specs"


def spec_path(*parts: str) -> Path:
    path = SPECS_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"official spec {path} is missing: set FIREBREAK_SHARED_DIR to the shared/ folder"
        )
    return path
