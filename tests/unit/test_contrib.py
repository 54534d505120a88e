"""The files shipped for operators (contrib/) agree with the programs."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest

from ccfarm.config import build, flag_values, read_toml
from ccfarm.daemon import main as daemon_main
from ccfarm.daemon.config import DaemonConfig
from ccfarm.scheduler import main as scheduler_main
from ccfarm.scheduler.config import SchedulerConfig

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
PROGRAMS = {
    "ccfarmd": (DaemonConfig, daemon_main.parser),
    "ccfarm-scheduler": (SchedulerConfig, scheduler_main.parser),
}


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_the_sample_config_is_valid(prog: str) -> None:
    cls, _ = PROGRAMS[prog]
    values = read_toml(cls, str(CONTRIB / "etc" / "ccfarm" / f"{prog}.toml"), prog)
    assert values  # it sets something, under the program's own table


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_the_samples_commented_settings_are_valid_too(prog: str, tmp_path: Path) -> None:
    """Each `# key = value` line, uncommented, is a setting the program takes."""
    cls, _ = PROGRAMS[prog]
    text = (CONTRIB / "etc" / "ccfarm" / f"{prog}.toml").read_text()
    lines = [re.sub(r"^# (?=[a-z-]+ = )", "", line) for line in text.splitlines()]
    assert sum(a != b for a, b in zip(lines, text.splitlines(), strict=True)) >= 5
    uncommented = tmp_path / f"{prog}.toml"
    uncommented.write_text("\n".join(lines) + "\n")
    values = read_toml(cls, str(uncommented), prog)
    assert "secret_file" in values and "tls_ca" in values


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_the_unit_is_type_notify_and_runs_the_program_in_front(prog: str) -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(CONTRIB / "systemd" / f"{prog}.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    command, *args = shlex.split(service["ExecStart"])
    assert Path(command).name == prog
    cls, parser = PROGRAMS[prog]
    config = build(cls, flag_values(cls, parser().parse_args(args)))
    assert not config.detach  # type: ignore[attr-defined]  # systemd watches its own process
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
