"""Certificates for the TLS tests, made with the `openssl` command.

`make_pki(directory)` writes two CAs (the farm's and a stranger's) and,
signed by each, a certificate for every loopback address the tests' hosts
use (127.0.0.1 and 127.0.1.2-251, `tests.conftest.next_address`), good for
servers and clients alike, as a farm's machines' certificates are.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ccfarm._record import record

#: the addresses every host certificate names
ADDRESSES = ("127.0.0.1", *(f"127.0.1.{n}" for n in range(2, 252)))


@record
class Pair:
    cert: str
    key: str


@record
class PKI:
    ca: str  # the farm's CA
    host: Pair  # signed by it, for every test address
    other_ca: str  # a stranger's CA
    other_host: Pair  # signed by the stranger, for the same addresses
    nameless: Pair  # signed by the farm's CA, naming no address at all


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[str, str]:
    key, cert = f"{name}.key", f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "3", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def _signed(directory: Path, name: str, ca: tuple[str, str], addresses: tuple[str, ...]) -> Pair:
    key, csr, cert, ext = f"{name}.key", f"{name}.csr", f"{name}.pem", f"{name}.ext"
    lines = ["extendedKeyUsage=serverAuth,clientAuth", "basicConstraints=CA:FALSE"]
    if addresses:
        lines.append("subjectAltName=" + ",".join(f"IP:{a}" for a in addresses))
    (directory / ext).write_text("\n".join(lines) + "\n")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "3", "-extfile", ext,
        cwd=directory,
    )  # fmt: skip
    return Pair(str(directory / cert), str(directory / key))


def make_pki(directory: Path) -> PKI:
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed for the TLS tests")
    directory.mkdir(parents=True, exist_ok=True)
    farm = _ca(directory, "farm-ca")
    other = _ca(directory, "other-ca")
    return PKI(
        ca=str(directory / farm[0]),
        host=_signed(directory, "host", farm, ADDRESSES),
        other_ca=str(directory / other[0]),
        other_host=_signed(directory, "stranger", other, ADDRESSES),
        nameless=_signed(directory, "nameless", farm, ()),
    )
