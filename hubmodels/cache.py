"""Where hubmodels keeps what it computes once and reuses: CLIP⁻¹ bank keys, and the per-batch
results of slow evaluations (AutoAttack), so a second run or an interrupted one starts where the
first stopped."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$HUBMODELS_CACHE``, else ``$XDG_CACHE_HOME/hubmodels``, else ``~/.cache/hubmodels``."""
    if os.environ.get("HUBMODELS_CACHE"):
        return Path(os.environ["HUBMODELS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hubmodels"
