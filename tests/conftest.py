"""Fixtures shared by the whole suite: the official reference vectors and the shared corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Hub downloads cannot succeed on CI machines; failing at once beats waiting on timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Textual animates highlight colours; a snapshot taken mid-fade differs by a shade from run
# to run, so the suite turns animations off.
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE_VECTORS = SHARED / "reference" / "sedd_official_vectors.pt"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def reference() -> dict:
    """The official SEDD outputs as a flat dict of tensors; skips when the file is absent."""
    if not REFERENCE_VECTORS.exists():
        pytest.skip(f"reference vectors not found at {REFERENCE_VECTORS}")
    import torch

    return torch.load(REFERENCE_VECTORS, weights_only=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real corpora beside the repository; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_DATA}")
    return SHARED_DATA
