"""What every program says about itself: `--version` from the one source,
and every environment variable the wrapper reads, in its `--help` and the docs."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from ccfarm import __version__
from ccfarm.cli import ctl, gethost
from ccfarm.client.job.command import USAGE, run_job
from ccfarm.daemon import main as daemon_main
from ccfarm.demo import __main__ as demo_main
from ccfarm.scheduler import main as scheduler_main

REPO = Path(__file__).resolve().parents[2]
#: variables ccfarm sets for itself, not for users: the launcher's argv[0],
#: the recursion guard, a protocol item (sent, not read from the environment)
INTERNAL = {"CCFARM_ARGV0", "CCFARM_SAFEGUARD", "CCFARM_PRIORITY", "CCFARM_CPP"}


def _argparse_version(main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("prog", "main"),
    [("ccfarmd", daemon_main.main), ("ccfarm-scheduler", scheduler_main.main),
     ("ccfarm-ctl", ctl.main), ("ccfarm-demo", demo_main.main)],
)  # fmt: skip
def test_version_of_the_argparse_programs(
    prog: str, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _argparse_version(main, capsys) == f"{prog} {__version__}\n"


def test_version_of_the_wrapper_and_gethost(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_job(["ccfarm", "--version"], {}) == 0
    assert gethost.main(["--version"]) == 0
    assert capsys.readouterr().out == f"ccfarm {__version__}\nccfarm-gethost {__version__}\n"


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ccfarm.__version__"}
    assert importlib.metadata.version("ccfarm") == __version__
    quoted = (f'"{__version__}"', f"'{__version__}'")
    hits = [
        str(p.relative_to(REPO))
        for p in (REPO / "src").rglob("*.py")
        if any(q in p.read_text() for q in quoted)
    ]
    assert hits == ["src/ccfarm/__init__.py"]


def _variables_read() -> set[str]:
    """Every CCFARM_*/DISTCC_* name in the wrapper's and the client tools' source."""
    names: set[str] = set()
    sources = [*(REPO / "src/ccfarm/client").rglob("*.py"), *(REPO / "src/ccfarm/cli").glob("*.py")]
    sources.append(REPO / "src/ccfarm/client/forkserver/launcher.c")
    for path in sources:
        for name in re.findall(r"""["']((?:CCFARM|DISTCC)_[A-Z_]+)["']""", path.read_text()):
            names.add(name)
    return names - INTERNAL


def test_the_source_reads_what_this_test_expects() -> None:
    found = _variables_read()
    assert {"CCFARM_SCHEDULER", "CCFARM_LEASE_WAIT", "CCFARM_SCHEDULER_TIMEOUT"} <= found
    assert len(found) > 15


@pytest.mark.parametrize(
    ("where", "text"),
    [("ccfarm --help", USAGE),
     ("README.md", (REPO / "README.md").read_text()),
     ("docs/operations.md", (REPO / "docs/operations.md").read_text())],
)  # fmt: skip
def test_every_variable_is_documented(where: str, text: str) -> None:
    missing = sorted(n for n in _variables_read() if not re.search(rf"\b{n}\b", text))
    assert not missing, f"{where} does not mention {', '.join(missing)}"
