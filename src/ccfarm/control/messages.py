"""Scheduler model records <-> control messages."""

from __future__ import annotations

from ccfarm.control.codec import Message, encode
from ccfarm.errors import RemoteProtocolError
from ccfarm.scheduler.model import (
    Compiler,
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


def _int(fields: dict[str, str], key: str) -> int:
    try:
        return int(fields[key])
    except (KeyError, ValueError):
        raise RemoteProtocolError(f"control message needs an integer {key!r}") from None


def _float(fields: dict[str, str], key: str, default: float | None = None) -> float:
    try:
        return float(fields[key])
    except KeyError:
        if default is None:
            raise RemoteProtocolError(f"control message needs {key!r}") from None
        return default
    except ValueError:
        raise RemoteProtocolError(f"control message needs a number {key!r}") from None


def _compiler(text: str) -> Compiler:
    try:
        return Compiler.parse(text)
    except ValueError:
        raise RemoteProtocolError(f"bad compiler {text!r}") from None


def encode_lease_request(req: LeaseRequest) -> bytes:
    fields: dict[str, object] = {"id": req.request, "client": req.client, "timeout": req.timeout}
    if req.compiler is not None:
        fields["compiler"] = req.compiler.text()
    if req.size > 0:
        fields["size"] = req.size
    return encode(LEASE_REQUEST, fields)


def decode_lease_request(message: Message, request_id: int) -> tuple[int, LeaseRequest]:
    """(the client's own id, the request under the scheduler's id)."""
    f = message.first()
    compiler = _compiler(f["compiler"]) if f.get("compiler") else None
    size = _int(f, "size") if "size" in f else 0
    return _int(f, "id"), LeaseRequest(
        request_id, f.get("client", "?"), compiler, _float(f, "timeout", 60.0), max(0, size)
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
        },
    )


def encode_refused(client_id: int, r: LeaseRefused) -> bytes:
    return encode(LEASE_REFUSED, {"id": client_id, "reason": r.reason})


def encode_revoked(client_id: int, r: LeaseRevoked) -> bytes:
    return encode(LEASE_REVOKED, {"id": client_id, "lease": r.lease, "reason": r.reason})


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
        },
    )


def decode_host_report(message: Message) -> HostReport:
    f = message.first()
    try:
        protocols = tuple(int(p) for p in f.get("protocols", "1,2,3").split(",") if p)
    except ValueError:
        raise RemoteProtocolError("bad protocols list") from None
    host = f.get("host") or f"{f.get('address')}:{f.get('port')}"
    return HostReport(
        host=host,
        address=f.get("address", ""),
        port=_int(f, "port"),
        slots=_int(f, "slots"),
        cpus=_int(f, "cpus"),
        speed=_float(f, "speed", 1.0),
        load=_float(f, "load", 0.0),
        running=int(f.get("running", "0") or 0),
        desktop_in_use=f.get("desktop") == "1",
        compilers=tuple(_compiler(c) for c in message.values("compiler")),
        protocols=protocols,
    )
