"""The committed man pages are what `scripts/manpages.py` makes from the
programs' --help sources now: a new flag or help text without its page fails."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ccfarm.daemon.main import parser as daemon_parser
from ccfarm.manpage import SECTION, page, programs

MAN = Path(__file__).resolve().parents[2] / "man"


@pytest.mark.parametrize("prog", programs())
def test_the_committed_page_is_up_to_date(prog: str) -> None:
    path = MAN / f"{prog}.{SECTION}"
    assert path.read_text() == page(prog), f"run scripts/manpages.py: {path.name} is stale"


def test_every_program_has_a_page() -> None:
    assert programs() == sorted(
        ["ccfarm", "ccfarmd", "ccfarm-scheduler", "ccfarm-ctl", "ccfarm-gethost"]
    )


def test_every_flag_of_the_daemon_is_on_its_page() -> None:
    text = page("ccfarmd")
    for action in daemon_parser()._actions:
        for flag in action.option_strings:
            assert flag.replace("-", "\\-") in text, flag


def test_the_page_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = page("ccfarmd")
    monkeypatch.setenv("COLUMNS", "200")
    assert page("ccfarmd") == wide


def test_roff_requests_cannot_come_from_help_text() -> None:
    from ccfarm.manpage import _roff

    assert _roff(".TH x\n'so y\nplain -x \\n") == "\\&.TH x\n\\&'so y\nplain \\-x \\en"


@pytest.mark.skipif(shutil.which("man") is None, reason="no man(1) to render with")
def test_the_pages_render(tmp_path: Path) -> None:
    for prog in programs():
        done = subprocess.run(
            ["man", "-l", "--warnings", str(MAN / f"{prog}.{SECTION}")],
            capture_output=True,
            text=True,
            env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert done.returncode == 0 and done.stderr == "", (prog, done.stderr)
        assert prog.upper() in done.stdout
