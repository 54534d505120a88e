"""The shared records (`ccfarm.model`) <-> control messages.

Every decoder checks what it reads and raises `RemoteProtocolError` with a
reason on anything missing or malformed: a peer's bad message never
reaches the caller as a `KeyError` or `ValueError`.
"""

from __future__ import annotations

import math

from ccfarm.control.codec import Message, encode
from ccfarm.errors import RemoteProtocolError
from ccfarm.model import (
    CompilerIdentity,
    HostReport,
    LeaseGranted,
    LeaseRefused,
    LeaseRequest,
    LeaseRevoked,
)

LEASE_REQUEST = "LREQ"
LEASE_GRANTED = "LGNT"
LEASE_REFUSED = "LREF"
LEASE_REVOKED = "LREV"
LEASE_RELEASE = "LREL"
LEASE_QUEUED = "LQUE"
HOST_FAILED = "HFAL"
HOST_REPORT = "HOST"
HOST_LEAVING = "BYEE"
QUERY_HOSTS = "QHST"
HOST_LIST = "HLST"
QUERY_JOBS = "QJOB"
JOB_LIST = "JLST"
DISABLE = "DSBL"
ENABLE = "ENBL"
OK = "OKAY"
FAILED = "FAIL"

#: ranges of what peers may claim: a number outside is refused with a reason
#: (docs/security.md, "Limits and load"); a host's slots are memory in the
#: scheduler (a pool entry per free slot and compiler), so they are capped
MAX_SLOTS = 4096
MAX_CPUS = 65536
MAX_RUNNING = 1 << 20
MAX_SPEED = 1e6
MAX_LOAD = 1e6
#: seconds a lease request may ask to wait
MAX_TIMEOUT = 86400.0
#: bytes of a job's preprocessed source (the LREQ size hint)
MAX_SIZE = 1 << 40
MAX_COMPILERS = 32
MAX_PROTOCOLS = 16
#: characters of a name (host, address, client, compiler) and of a reason
MAX_NAME = 255
MAX_REASON = 1000
#: the largest message the scheduler takes from a peer (a host's report with
#: every compiler is a few KiB; the big ones, host and job lists, go the other way)
MAX_MESSAGE_IN = 256 * 1024


def _int(
    fields: dict[str, str], key: str, default: int | None = None, maximum: int = 10**18 - 1
) -> int:
    """A non-negative integer field of at most `maximum` (`default` when absent, if given)."""
    text = fields.get(key)
    if text is None:
        if default is None:
            raise RemoteProtocolError(f"control message needs an integer {key!r}")
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise RemoteProtocolError(f"control message needs an integer {key!r}, not {text[:40]!r}")
    value = int(text)
    if value > maximum:
        raise RemoteProtocolError(f"{key}={value} is out of range (at most {maximum})")
    return value


def _signed(fields: dict[str, str], key: str) -> int:
    """An integer field that may be negative (a speed tier)."""
    text = fields.get(key, "")
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise RemoteProtocolError(f"control message needs an integer {key!r}, not {text[:40]!r}")
    return int(text)


def _float(
    fields: dict[str, str], key: str, default: float | None = None, maximum: float = math.inf
) -> float:
    """A finite number from 0 to `maximum` (`default` when absent, if given)."""
    text = fields.get(key)
    if text is None:
        if default is None:
            raise RemoteProtocolError(f"control message needs {key!r}")
        return default
    try:
        value = float(text) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise RemoteProtocolError(f"control message needs a number {key!r}, not {text[:40]!r}")
    if value > maximum:
        raise RemoteProtocolError(f"{key}={text[:40]} is out of range (at most {maximum:g})")
    return value


def _text(fields: dict[str, str], key: str, maximum: int = MAX_NAME) -> str:
    text = fields.get(key)
    if not text:
        raise RemoteProtocolError(f"control message needs {key!r}")
    return _bounded(key, text, maximum)


def _bounded(key: str, text: str, maximum: int = MAX_NAME) -> str:
    if len(text) > maximum:
        raise RemoteProtocolError(
            f"{key} of {len(text)} characters is too long (at most {maximum})"
        )
    return text


def _port(fields: dict[str, str], key: str = "port") -> int:
    port = _int(fields, key)
    if not 0 < port < 65536:
        raise RemoteProtocolError(f"bad port {port}")
    return port


def _compiler(text: str) -> CompilerIdentity:
    _bounded("compiler", text)
    try:
        return CompilerIdentity.parse(text)
    except ValueError:
        raise RemoteProtocolError(f"bad compiler {text[:80]!r}") from None


def encode_lease_request(req: LeaseRequest) -> bytes:
    fields: dict[str, object] = {"id": req.request, "client": req.client, "timeout": req.timeout}
    if req.compiler is not None:
        fields["compiler"] = req.compiler.text()
    if req.size > 0:
        fields["size"] = req.size
    if req.main > 0:
        fields["main"] = req.main
    if req.local_slot:
        fields["local_slot"] = 1
    if req.local_speed > 0:
        fields["local_speed"] = f"{req.local_speed:.4g}"
    return encode(LEASE_REQUEST, fields)


def decode_lease_request(message: Message, request_id: int) -> tuple[int, LeaseRequest]:
    """(the client's own id, the request under the scheduler's id)."""
    f = message.first()
    compiler = _compiler(f["compiler"]) if f.get("compiler") else None
    size = _int(f, "size", 0, MAX_SIZE)
    return _int(f, "id"), LeaseRequest(
        request_id,
        _bounded("client", f.get("client", "?")),
        compiler,
        _float(f, "timeout", 60.0, MAX_TIMEOUT),
        size,
        local_slot=_int(f, "local_slot", 0, 1) > 0,
        local_speed=_float(f, "local_speed", 0.0, MAX_SPEED),
        main=min(_int(f, "main", 0, MAX_SIZE), size),  # part of the size
    )


def encode_granted(client_id: int, g: LeaseGranted) -> bytes:
    return encode(
        LEASE_GRANTED,
        {
            "id": client_id,
            "lease": g.lease,
            "host": g.host,
            "address": g.address,
            "port": g.port,
            "express": int(g.express),
            **({"speed": f"{g.speed:.4g}"} if g.speed > 0 else {}),
            **({} if g.tier is None else {"tier": g.tier}),
        },
    )


def decode_granted(message: Message) -> LeaseGranted:
    """A grant as the client reads it (`request` is the client's own id)."""
    f = message.first()
    return LeaseGranted(
        _int(f, "id", 0),
        _int(f, "lease"),
        _text(f, "host"),
        _text(f, "address"),
        _port(f),
        f.get("express") == "1",
        _float(f, "speed", 0.0),
        _signed(f, "tier") if "tier" in f else None,
    )


def encode_refused(client_id: int, r: LeaseRefused) -> bytes:
    fields: dict[str, object] = {"id": client_id, "reason": r.reason}
    if r.note:
        fields["note"] = " ".join(r.note.split())
    return encode(LEASE_REFUSED, fields)


def decode_refused(message: Message) -> LeaseRefused:
    f = message.first()
    return LeaseRefused(_int(f, "id", 0), f.get("reason") or "refused", f.get("note", ""))


def encode_revoked(client_id: int, r: LeaseRevoked) -> bytes:
    return encode(LEASE_REVOKED, {"id": client_id, "lease": r.lease, "reason": r.reason})


def decode_revoked(message: Message) -> LeaseRevoked:
    f = message.first()
    return LeaseRevoked(_int(f, "lease"), _int(f, "id", 0), f.get("reason") or "revoked")


def encode_release(lease: int) -> bytes:
    return encode(LEASE_RELEASE, {"lease": lease})


def decode_release(message: Message) -> int:
    """The lease a client gives back."""
    return _int(message.first(), "lease")


def encode_queued(client_id: int) -> bytes:
    """The scheduler's "your request waits", sent at once: the client knows it is alive."""
    return encode(LEASE_QUEUED, {"id": client_id})


def decode_queued(message: Message) -> int:
    """The client's own id of the request that waits."""
    return _int(message.first(), "id")


def encode_host_failed(lease: int, reason: str) -> bytes:
    """A client's report that the host of `lease` failed its job (refused, cut, garbage)."""
    return encode(HOST_FAILED, {"lease": lease, "reason": " ".join(reason.split()) or "failed"})


def decode_host_failed(message: Message) -> tuple[int, str]:
    """(the lease, why its host failed)."""
    f = message.first()
    return _int(f, "lease"), _text(f, "reason", MAX_REASON)


def encode_host_name(kind: str, host: str) -> bytes:
    """A message about one host by name (BYEE, DSBL, ENBL)."""
    return encode(kind, {"host": host})


def decode_host_name(message: Message) -> str:
    return _text(message.first(), "host")


def encode_host_report(r: HostReport) -> bytes:
    return encode(
        HOST_REPORT,
        {
            "host": r.host,
            "address": r.address,
            "port": r.port,
            "slots": r.slots,
            "cpus": r.cpus,
            "speed": f"{r.speed:.4g}",
            "load": f"{r.load:.2f}",
            "running": r.running,
            "desktop": int(r.desktop_in_use),
            "compiler": [c.text() for c in r.compilers],
            "protocols": ",".join(str(p) for p in r.protocols),
            **({} if r.external_load is None else {"external": f"{r.external_load:.3f}"}),
        },
    )


def decode_host_report(message: Message) -> HostReport:
    f = message.first()
    listed = [p for p in _bounded("protocols", f.get("protocols", "1,2,3")).split(",") if p]
    if len(listed) > MAX_PROTOCOLS:
        raise RemoteProtocolError(f"{len(listed)} protocols (at most {MAX_PROTOCOLS})")
    protocols = tuple(_int({"protocols": p}, "protocols", maximum=0xFFFFFFFF) for p in listed)
    compilers = message.values("compiler")
    if len(compilers) > MAX_COMPILERS:
        raise RemoteProtocolError(f"{len(compilers)} compilers (at most {MAX_COMPILERS})")
    port = _port(f)
    address = _bounded("address", f.get("address", ""))
    return HostReport(
        host=_bounded("host", f.get("host") or f"{address}:{port}"),
        address=address,
        port=port,
        slots=_int(f, "slots", maximum=MAX_SLOTS),
        cpus=_int(f, "cpus", maximum=MAX_CPUS),
        speed=_float(f, "speed", 1.0, MAX_SPEED),
        load=_float(f, "load", 0.0, MAX_LOAD),
        running=_int(f, "running", 0, MAX_RUNNING),
        desktop_in_use=f.get("desktop") == "1",
        compilers=tuple(_compiler(c) for c in compilers),
        protocols=protocols,
        external_load=_float(f, "external", maximum=MAX_LOAD) if "external" in f else None,
    )
