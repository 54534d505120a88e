"""The issue's attacks, built by hand on the distcc protocol, against a real
ccfarmd: nothing runs (marker files), nothing is written outside the job
(marker directories), nothing is read (a secret file made here), and the
daemon keeps serving after each. The catalogue is bench/attacks.py's, which
also sends it to a real distccd for comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.attacks import ATTACKS, exchange, make_scratch, outcome
from tests.adversity.test_bad_input import GOOD
from tests.conftest import job_dirs, wait_for

#: `.incbin` reads through the assembler, which no argument check sees: the
#: per-job sandbox stops it (bench/attacks.py still sends it)
SANDBOX_ONLY = {"incbin"}
#: compiled, but so that the attack shows nothing (protocols 1/2 run with
#: -fno-diagnostics-show-caret: gcc reads no file a line marker names)
DEFUSED = {"line-marker"}


@pytest.mark.parametrize(
    "attack", [a for a in ATTACKS if a.name not in SANDBOX_ONLY], ids=lambda a: a.name
)
def test_attack_refused_and_daemon_keeps_serving(attack, daemon_dir: Path, ccfarmd) -> None:  # type: ignore[no-untyped-def]
    # (a daemon started as root gives up root: its job and marker directories
    # must be reachable for its user, or an attack would fail for that alone)
    work = daemon_dir / "jobs"
    work.mkdir()
    os.chown(work, daemon_dir.stat().st_uid, daemon_dir.stat().st_gid)
    scratch = make_scratch(str(daemon_dir))
    daemon = ccfarmd(extra=("--tmpdir", str(work), "--io-timeout", "10"))
    request = attack.build(scratch)
    reply = exchange(daemon.address, daemon.port, request)
    assert outcome(attack, scratch, request, reply) == "refused"
    if attack.name not in DEFUSED:
        assert not reply.startswith(b"DONE"), reply[:80]  # refused before anything ran
    assert list(scratch.marker(attack.name).iterdir()) == []
    good = exchange(daemon.address, daemon.port, GOOD)
    assert good.startswith(b"DONE00000001STAT00000000")
    wait_for(lambda: not job_dirs(work))
    log = Path(daemon.log_path).read_text()
    assert "Traceback" not in log and "internal error" not in log
    assert scratch.token.decode() not in log


def test_attacks_work_without_the_checks(tmp_path: Path) -> None:
    """The markers and the secret do show an attack that gets through: the
    same commands, run here by the compiler itself, leave their traces."""
    import subprocess

    scratch = make_scratch(str(tmp_path))
    marker = scratch.marker("opt-info")
    src = tmp_path / "x.c"
    src.write_text("int f(int a) { return a * 2; }\n")
    subprocess.run(
        ["gcc", "-O2", f"-fopt-info-all={marker}/log", "-c", str(src), "-o", str(tmp_path / "x.o")],
        check=True,
    )
    assert list(marker.iterdir())
    (tmp_path / "y.c").write_text(f'#include "{scratch.secret}"\n')
    proc = subprocess.run(["gcc", "-c", "y.c"], cwd=tmp_path, capture_output=True, check=False)
    assert scratch.token in proc.stderr
