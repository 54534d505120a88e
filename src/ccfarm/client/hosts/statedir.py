"""Where a user's wrapper state lives (a module of its own: the start-up path needs it)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def state_dir(env: Mapping[str, str]) -> str:
    """`$CCFARM_DIR`, else `$DISTCC_DIR`, else `~/.distcc` (HOME from `env`)."""
    path = env.get("CCFARM_DIR") or env.get("DISTCC_DIR")
    if not path:
        path = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".distcc")
    return path
