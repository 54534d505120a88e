"""TLS on the farm's connections: the settings' rules, the contexts built
from them, and how a server tells a TLS connection from a plain one.

Servers (`ccfarm-scheduler`, `ccfarmd`): with a certificate and its key the
port accepts TLS beside the plain protocols, on the same port (a TLS
record starts with the byte 0x16, which no ccfarm or distcc connection
starts with); with a CA, a TLS client must present a certificate that CA
signed; `require` refuses ccfarm's own connections that are not TLS.
Clients (the wrapper, `ccfarm-gethost`, `ccfarm-ctl`, ccfarmd's host
agent): with a CA, they speak TLS and check the server's certificate
against it and against the name or address they dialled, presenting their
own certificate when given one.

`ssl` is imported only by the functions that build contexts, so a program
without TLS never loads it (the wrapper runs once per compile job).
"""

from __future__ import annotations

from ccfarm._record import record
from ccfarm.errors import ConfigError

MYPY = False
if MYPY:
    import ssl

#: the first byte of a TLS record carrying a handshake message
HANDSHAKE_RECORD = 0x16
#: the first byte of a TLS record's version (SSL 3.0 to TLS 1.3 all say 3)
RECORD_MAJOR = 0x03

TLS = "tls"
PLAIN = "plain"

#: the wrapper's variables
CERT_ENV = "CCFARM_TLS_CERT"
KEY_ENV = "CCFARM_TLS_KEY"
CA_ENV = "CCFARM_TLS_CA"


@record
class TLSFiles:
    """The files a program is given (each "" when not set)."""

    cert: str = ""
    key: str = ""
    ca: str = ""

    @property
    def serves(self) -> bool:
        """A server with these accepts TLS connections."""
        return bool(self.cert)

    @property
    def dials(self) -> bool:
        """A client with these connects with TLS."""
        return bool(self.ca)


def first_bytes(data: bytes) -> str | None:
    """TLS or PLAIN from the first bytes a client sent, None for none yet.

    A TLS ClientHello starts 0x16 0x03; ccfarm's connections start `CCFC`
    or `AUTH`, distcc's `DIST`, HTTP with a method, none with 0x16. One
    byte 0x16 is taken as TLS already (the handshake then says whether it
    is); anything else is plain, and the plain protocols' parsers judge it.
    """
    if not data:
        return None
    if data[0] != HANDSHAKE_RECORD:
        return PLAIN
    if len(data) >= 2 and data[1] != RECORD_MAJOR:
        return PLAIN
    return TLS


def server_problem(files: TLSFiles, require: bool) -> str | None:
    """What is wrong with a server's TLS settings (None: they may be used)."""
    if files.cert and not files.key:
        return "--tls-cert needs --tls-key (the certificate's private key)"
    if files.key and not files.cert:
        return "--tls-key needs --tls-cert"
    if files.ca and not files.cert:
        return "--tls-ca needs --tls-cert and --tls-key (this port's own certificate)"
    if require and not files.cert:
        return "--tls-require needs --tls-cert and --tls-key"
    return None


def client_problem(files: TLSFiles, names: tuple[str, str, str] = ("", "", "")) -> str | None:
    """What is wrong with a client's TLS settings (None: they may be used).

    `names`: how the program spells the cert, key and CA settings (the
    flags by default; the wrapper passes its variables)."""
    flags = ("--tls-cert", "--tls-key", "--tls-ca")
    cert, key, ca = (n or d for n, d in zip(names, flags, strict=True))
    if files.cert and not files.key:
        return f"{cert} needs {key} (the certificate's private key)"
    if files.key and not files.cert:
        return f"{key} needs {cert}"
    if files.cert and not files.ca:
        return f"{cert} needs {ca} (the CA that signed the servers' certificates)"
    return None


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """The context a server wraps its TLS connections in; ConfigError when a
    file cannot be read or does not hold what it should.

    TLS 1.2 at least; with a CA, a client certificate it signed is required.
    No session tickets: connections are not resumed, and a ticket would
    arrive at a blocking client when it waits for the first answer.
    """
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.num_tickets = 0
    _load_chain(context, files)
    if files.ca:
        _load_ca(context, files.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(files: TLSFiles) -> ssl.SSLContext:
    """The context a client connects with: the server's certificate must be
    signed by the CA and name the host dialled (`server_hostname`); the
    client's own certificate goes with it when given.

    Kept for the process's next calls while the files stay as they were
    (device, inode, size, mtime): a fork server's worker runs job after job,
    and loading a CA bundle and a key costs each job ~1 ms or more. A file
    replaced or rewritten (a renewed certificate) is loaded again.
    """
    global _last_client
    import ssl

    key = (files, *map(_identity, (files.cert, files.key, files.ca)))
    if _last_client is not None and _last_client[0] == key:
        return _last_client[1]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # (checks the name and the chain)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ca(context, files.ca)
    if files.cert:
        _load_chain(context, files)
    if None not in key:  # one set of files per process in practice: the last is kept
        _last_client = (key, context)
    return context


#: `client_context`'s last context, with its files and their identities
_last_client: tuple[tuple[object, ...], ssl.SSLContext] | None = None


def _identity(path: str) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime in ns) of `path`; zeros for no file; None if unreadable."""
    if not path:
        return (0, 0, 0, 0)
    import os

    try:
        st = os.stat(path)
    except OSError:
        return None  # not cached: loading says what is wrong
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _load_chain(context: ssl.SSLContext, files: TLSFiles) -> None:
    import ssl

    try:
        context.load_cert_chain(files.cert, files.key or None)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"TLS certificate {files.cert} and key {files.key} do not load: {exc.reason or exc}"
        ) from None
    except OSError as exc:
        where = exc.filename or f"{files.cert} or {files.key}"
        raise ConfigError(f"TLS certificate or key {where}: {exc.strerror}") from None


def _load_ca(context: ssl.SSLContext, ca: str) -> None:
    import ssl

    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS CA {ca} does not load: {exc.reason or exc}") from None
    except OSError as exc:
        raise ConfigError(f"TLS CA {ca}: {exc.strerror}") from None


def server_from(files: TLSFiles, require: bool) -> ssl.SSLContext | None:
    """The server's context (None without a certificate: no TLS); ConfigError
    for settings that do not go together or files that do not load."""
    problem = server_problem(files, require)
    if problem is not None:
        raise ConfigError(problem)
    return server_context(files) if files.serves else None


def client_from(
    files: TLSFiles, names: tuple[str, str, str] = ("", "", "")
) -> ssl.SSLContext | None:
    """The client's context (None without a CA: no TLS); ConfigError as `server_from`."""
    problem = client_problem(files, names)
    if problem is not None:
        raise ConfigError(problem)
    return client_context(files) if files.dials else None


def is_tls(writer: object) -> bool:
    """Did this connection (an asyncio StreamWriter) come in over TLS?"""
    get = getattr(writer, "get_extra_info", None)
    return get is not None and get("ssl_object") is not None


__all__ = [
    "CA_ENV",
    "CERT_ENV",
    "KEY_ENV",
    "PLAIN",
    "TLS",
    "TLSFiles",
    "client_context",
    "client_from",
    "client_problem",
    "first_bytes",
    "is_tls",
    "server_context",
    "server_from",
    "server_problem",
]
