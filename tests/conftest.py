"""Shared test helpers.

Tests read reference fixtures and real samples in place from ``../shared`` (beside the
repository). Without it they skip with a reason; with ``LITEPOSE_REQUIRE_SHARED=1`` (CI)
a missing file fails the test instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("LITEPOSE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def shared(rel: str) -> Path:
    """Path of a file under ../shared; skip (or fail in CI) when it is absent."""
    p = SHARED / rel
    if not p.exists():
        msg = f"{p} is absent (the ../shared reference data sits beside the repository in CI)"
        if os.environ.get("LITEPOSE_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(2)
    yield
