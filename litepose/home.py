"""Where litepose keeps files between runs: ``$LITEPOSE_HOME``, default ``~/.cache/litepose``.

Compiled kernels (:mod:`litepose.native`) live under ``kernels/`` (a private folder, mode
0700), downloaded weights (:mod:`litepose.models.weights`) under ``weights/``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_HOME", "home_dir"]

ENV_HOME = "LITEPOSE_HOME"


def home_dir() -> Path:
    """litepose's cache folder (not created here): ``$LITEPOSE_HOME``, else ``~/.cache/litepose``."""
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "litepose"
