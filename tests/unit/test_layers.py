"""The package layering rules of docs/design.md, checked on the source.

* No import cycle between packages (`ccfarm.control` never imports
  `ccfarm.scheduler`, ...), nor between the rooms of `ccfarm.client`.
* The pure layers (protocol, control, compiler, model, the scheduler core
  and the wrapper's plan) import no sockets, event loop, processes or clock.

Every import counts, also those inside functions (the wrapper imports
lazily for start-up time); only imports for type checkers (`if MYPY:`,
`if TYPE_CHECKING:`) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ccfarm"
PURE_PACKAGES = ("protocol", "control", "compiler", "model", "limits")
#: the wrapper's decisions (its shell is the rest of client/job), the job sandbox's
#: command line (its shell is daemon/process) and the warm rooms' script and
#: pool rules (daemon/process, daemon/pool)
PURE_MODULES = (
    "ccfarm.client.job.plan",
    "ccfarm.client.job.fallback",
    "ccfarm.client.job.explain",
    "ccfarm.daemon.sandbox",
    "ccfarm.daemon.warm",
)
#: the scheduler's shell and entry point; every other scheduler module is core
SCHEDULER_SHELLS = ("service", "main")
IO_MODULES = {"socket", "_socket", "asyncio", "subprocess", "time", "selectors", "threading"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id in ("MYPY", "TYPE_CHECKING")


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of every module imported at run time."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _unit(module: str) -> str | None:
    """The layer a ccfarm module belongs to: a top-level package or module,
    or one room of `ccfarm.client`."""
    parts = module.split(".")
    if parts[0] != "ccfarm" or len(parts) < 2:
        return None
    if parts[1] == "client" and len(parts) > 3:
        return f"client.{parts[2]}"
    if parts[1] == "client" and len(parts) == 3 and parts[2] in ("job", "hosts", "forkserver"):
        return f"client.{parts[2]}"
    return parts[1]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        unit = _unit(module)
        if unit is None:
            continue
        edges = graph.setdefault(unit, set())
        for name in _imports(path, module):
            # "from ccfarm.client.hosts import slots" names ccfarm.client.hosts.slots
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            target = _unit(name) if name in modules else None
            if target is not None and target != unit:
                edges.add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_the_checker_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nMYPY = False\nif MYPY:\n    import typing\n"
        "def f():\n    from ccfarm.client.hosts import slots\n    from . import sibling\n"
    )
    found = _imports(source, "ccfarm.client.job.m")
    assert {"os", "ccfarm.client.hosts.slots", "ccfarm.client.job.sibling"} <= found
    assert "typing" not in found


def test_no_import_cycle_between_packages() -> None:
    graph = _graph()
    assert {"scheduler", "control", "model", "client.job", "client.forkserver"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_control_does_not_depend_on_the_scheduler() -> None:
    assert "scheduler" not in _graph()["control"]


def _is_pure(module: str) -> bool:
    if module in PURE_MODULES:
        return True
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in PURE_PACKAGES:
        return True
    return len(parts) == 3 and parts[1] == "scheduler" and parts[2] not in SCHEDULER_SHELLS


def _pure_modules() -> list[str]:
    return sorted(m for m in _modules() if _is_pure(m))


@pytest.mark.parametrize("module", _pure_modules())
def test_pure_layers_do_no_io(module: str) -> None:
    imported = {name.split(".")[0] for name in _imports(_modules()[module], module)}
    assert not imported & IO_MODULES, f"{module} imports {sorted(imported & IO_MODULES)}"
