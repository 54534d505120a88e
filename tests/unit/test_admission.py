"""`daemon.admission.refusal`: which requests run without the handshake, every case."""

from __future__ import annotations

import itertools

import pytest

from ccfarm.daemon.admission import refusal
from ccfarm.protocol import CCFARM, CCFARM_CPP, LZO, PLAIN, PUMP, VERSIONS


@pytest.mark.parametrize(
    ("version", "secret", "authenticated", "distcc_clients"),
    list(itertools.product(VERSIONS, [False, True], [False, True], [False, True])),
)
def test_refusal_table(
    version: int, secret: bool, authenticated: bool, distcc_clients: bool
) -> None:
    reason = refusal(
        version, secret=secret, authenticated=authenticated, distcc_clients=distcc_clients
    )
    plain = version in (PLAIN, LZO, PUMP)
    runs = not secret or authenticated or (plain and distcc_clients)
    assert (reason is None) == runs
    if not runs:
        expected = "--no-distcc-clients" if plain else "without the farm secret's handshake"
        assert reason is not None and expected in reason


def test_ccfarm_versions_are_named_in_hex() -> None:
    for version in (CCFARM, CCFARM_CPP):
        reason = refusal(version, secret=True, authenticated=False, distcc_clients=True)
        assert reason == f"protocol {version:#x} without the farm secret's handshake"
