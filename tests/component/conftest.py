"""The component tier: real asyncio shells in-process, in-memory streams, a virtual clock.

`async def` tests run on a fresh `_loop.VirtualLoop` each (no plugin
needed): timeouts and the scheduler's clock take no real time, and every
run goes the same way. A component test that takes more than a few real
seconds is broken, so the per-test timeout is short.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tests.component._loop import run

TIMEOUT = 30


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    run(func(**args))
    return True


HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUT))
