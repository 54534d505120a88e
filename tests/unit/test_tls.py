"""`ccfarm.tls`: the first-byte decision, which settings go together, and the
contexts built from them (with certificates `tests.tlscerts` makes)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from ccfarm import tls
from ccfarm.errors import ConfigError
from ccfarm.tls import TLSFiles
from tests.tlscerts import PKI, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


# -- the first bytes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", None),
        (b"\x16", tls.TLS),
        (b"\x16\x03", tls.TLS),
        (b"\x16\x03\x01\x02\x00\x01", tls.TLS),  # a ClientHello's record header
        (b"\x16\x03\x03", tls.TLS),
        (b"\x16\x02", tls.PLAIN),  # not a TLS version: the plain parsers judge it
        (b"\x16\x00", tls.PLAIN),
        (b"CCFC", tls.PLAIN),
        (b"AUTH", tls.PLAIN),
        (b"DIST00000001", tls.PLAIN),
        (b"GET / HTTP/1.1\r\n", tls.PLAIN),
        (b"\x03\x16", tls.PLAIN),
        (b"\x00", tls.PLAIN),
    ],
)
def test_first_bytes(data: bytes, kind: str | None) -> None:
    assert tls.first_bytes(data) == kind


def test_every_first_byte_but_the_handshake_record_is_plain() -> None:
    for byte in range(256):
        expected = tls.TLS if byte == 0x16 else tls.PLAIN
        assert tls.first_bytes(bytes([byte])) == expected
        assert tls.first_bytes(bytes([byte, 0x03])) == expected
        if byte != 0x03:
            assert tls.first_bytes(bytes([0x16, byte])) == tls.PLAIN


# -- which settings go together ------------------------------------------------------

SERVER_CASES = [
    # cert, key, ca, require -> the problem named (None: fine)
    (("", "", ""), False, None),
    (("c", "k", ""), False, None),
    (("c", "k", "a"), False, None),
    (("c", "k", "a"), True, None),
    (("c", "k", ""), True, None),
    (("c", "", ""), False, "--tls-cert needs --tls-key"),
    (("", "k", ""), False, "--tls-key needs --tls-cert"),
    (("", "", "a"), False, "--tls-ca needs --tls-cert"),
    (("", "", ""), True, "--tls-require needs --tls-cert"),
]


@pytest.mark.parametrize(("files", "require", "problem"), SERVER_CASES)
def test_server_settings(files: tuple[str, str, str], require: bool, problem: str | None) -> None:
    found = tls.server_problem(TLSFiles(*files), require)
    assert (found is None) == (problem is None)
    if problem is not None:
        assert found is not None and found.startswith(problem)
        with pytest.raises(ConfigError, match=problem):
            tls.server_from(TLSFiles(*files), require)
    assert TLSFiles(*files).serves == bool(files[0])


CLIENT_CASES = [
    (("", "", ""), None),
    (("", "", "a"), None),
    (("c", "k", "a"), None),
    (("c", "", "a"), "--tls-cert needs --tls-key"),
    (("", "k", "a"), "--tls-key needs --tls-cert"),
    (("c", "k", ""), "--tls-cert needs --tls-ca"),
]


@pytest.mark.parametrize(("files", "problem"), CLIENT_CASES)
def test_client_settings(files: tuple[str, str, str], problem: str | None) -> None:
    found = tls.client_problem(TLSFiles(*files))
    assert (found is None) == (problem is None)
    if problem is not None:
        assert found is not None and found.startswith(problem)
    assert TLSFiles(*files).dials == bool(files[2])


def test_the_wrapper_is_told_in_its_variables_names() -> None:
    names = (tls.CERT_ENV, tls.KEY_ENV, tls.CA_ENV)
    assert tls.client_problem(TLSFiles("c", "k", ""), names) == (
        "CCFARM_TLS_CERT needs CCFARM_TLS_CA (the CA that signed the servers' certificates)"
    )
    assert (
        tls.client_problem(TLSFiles("", "k", "a"), names) == "CCFARM_TLS_KEY needs CCFARM_TLS_CERT"
    )


def test_without_files_there_is_no_context() -> None:
    assert tls.server_from(TLSFiles(), False) is None
    assert tls.client_from(TLSFiles()) is None


# -- the contexts -------------------------------------------------------------------


def test_a_server_context_requires_a_client_certificate_only_with_a_ca(pki: PKI) -> None:
    open_port = tls.server_from(TLSFiles(pki.host.cert, pki.host.key), False)
    assert open_port is not None and open_port.verify_mode == ssl.CERT_NONE
    checked = tls.server_from(TLSFiles(pki.host.cert, pki.host.key, pki.ca), True)
    assert checked is not None and checked.verify_mode == ssl.CERT_REQUIRED
    for context in (open_port, checked):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.num_tickets == 0


def test_a_client_context_checks_the_name_and_the_chain(pki: PKI) -> None:
    context = tls.client_from(TLSFiles(ca=pki.ca))
    assert context is not None
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "farm-ca"),),)]
    assert tls.client_from(TLSFiles(pki.host.cert, pki.host.key, pki.ca)) is not None


def test_a_client_context_is_kept_while_its_files_stay_as_they_were(
    pki: PKI, tmp_path: Path
) -> None:
    """A fork server's worker builds its context once for many jobs; a
    certificate replaced on disk (a renewal) is loaded again, and a file
    gone is an error again, not the kept context."""
    import shutil

    cert = tmp_path / "client.pem"
    shutil.copy(pki.host.cert, cert)
    files = TLSFiles(str(cert), pki.host.key, pki.ca)
    first = tls.client_from(files)
    assert first is not None and tls.client_from(files) is first
    assert tls.client_from(TLSFiles(ca=pki.ca)) is not first  # other files, another context
    renewed = tmp_path / "renewed.pem"
    shutil.copy(pki.other_host.cert, renewed)
    os.replace(renewed, cert)  # same path, another file (and another key would not load)
    with pytest.raises(ConfigError, match="do not load"):
        tls.client_from(files)
    shutil.copy(pki.host.cert, renewed)
    os.replace(renewed, cert)
    again = tls.client_from(files)
    assert again is not None and again is not first
    cert.unlink()
    with pytest.raises(ConfigError, match="client.pem"):
        tls.client_from(files)


def test_files_that_do_not_load_are_config_errors(pki: PKI, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [
        (lambda: tls.server_from(TLSFiles(missing, pki.host.key), False), "missing.pem"),
        (lambda: tls.server_from(TLSFiles(str(junk), pki.host.key), False), "do not load"),
        # a certificate with another certificate's key
        (
            lambda: tls.server_from(TLSFiles(pki.host.cert, pki.other_host.key), False),
            "do not load",
        ),
        (lambda: tls.server_from(TLSFiles(pki.host.cert, pki.host.key, missing), False), "TLS CA"),
        (lambda: tls.client_from(TLSFiles(ca=str(junk))), "TLS CA"),
        (lambda: tls.client_from(TLSFiles(ca=missing)), "TLS CA"),
    ]
    for build, words in cases:
        with pytest.raises(ConfigError, match=words):
            build()


class _Writer:
    def __init__(self, extra: dict[str, object]) -> None:
        self.extra = extra

    def get_extra_info(self, name: str) -> object:
        return self.extra.get(name)


def test_is_tls() -> None:
    assert tls.is_tls(_Writer({"ssl_object": object()}))
    assert not tls.is_tls(_Writer({}))
    assert not tls.is_tls(object())
