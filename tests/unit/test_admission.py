"""`daemon.admission.refusal`: which requests run without the handshake, and
without TLS under `--tls-require`, every case."""

from __future__ import annotations

import itertools

import pytest

from ccfarm.daemon.admission import refusal
from ccfarm.protocol import CCFARM, CCFARM_CPP, LZO, PLAIN, PUMP, VERSIONS

BOTH = [False, True]


@pytest.mark.parametrize(
    ("version", "secret", "authenticated", "distcc_clients", "tls_required", "tls"),
    list(itertools.product(VERSIONS, BOTH, BOTH, BOTH, BOTH, BOTH)),
)
def test_refusal_table(
    version: int,
    secret: bool,
    authenticated: bool,
    distcc_clients: bool,
    tls_required: bool,
    tls: bool,
) -> None:
    reason = refusal(
        version,
        secret=secret,
        authenticated=authenticated,
        distcc_clients=distcc_clients,
        tls_required=tls_required,
        tls=tls,
    )
    plain = version in (PLAIN, LZO, PUMP)
    if tls_required and not tls:  # a plain distcc client at most, whatever the secret
        runs = plain and distcc_clients
        expected = "--no-distcc-clients" if plain else "without TLS, and --tls-require is set"
    else:
        runs = not secret or authenticated or (plain and distcc_clients)
        expected = "--no-distcc-clients" if plain else "without the farm secret's handshake"
    assert (reason is None) == runs
    if not runs:
        assert reason is not None and expected in reason


def test_ccfarm_versions_are_named_in_hex() -> None:
    for version in (CCFARM, CCFARM_CPP):
        reason = refusal(version, secret=True, authenticated=False, distcc_clients=True)
        assert reason == f"protocol {version:#x} without the farm secret's handshake"
