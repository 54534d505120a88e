"""Make Debian 12's distcc include server run on Python >= 3.10 (tests only).

Its C extension parses arguments with `s#` and int lengths, which Python
3.10+ refuses (PY_SSIZE_T_CLEAN) in three functions. When this directory is
on PYTHONPATH, Python imports this module at start-up: it loads the real
extension and replaces those three functions with equivalents, so
`distcc-pump` really runs its include server (distcc protocol 3).
"""

import importlib.machinery
import importlib.util
import os
import sys

from lzallright import LZOCompressor

_NAME = "distcc_pump_c_extensions"
_DIR = "/usr/lib/python3/dist-packages/include_server"


def _install() -> None:
    candidates = [f for f in os.listdir(_DIR) if f.startswith(_NAME) and f.endswith(".so")]
    if not candidates:
        return
    loader = importlib.machinery.ExtensionFileLoader(_NAME, os.path.join(_DIR, candidates[0]))
    spec = importlib.util.spec_from_loader(_NAME, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    module.OsPathExists = os.path.exists
    module.OsPathIsFile = os.path.isfile
    module.CompressLzo1xAlloc = lambda text: LZOCompressor().compress(
        text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    )
    sys.modules[_NAME] = module


if os.path.isdir(_DIR):
    _install()
