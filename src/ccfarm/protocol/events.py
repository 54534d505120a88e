"""Events of one distcc job connection, as frozen dataclasses.

Request events flow client -> daemon, reply events daemon -> client. Bulk
bodies are always the plain (decompressed) bytes; compression is a property
of the protocol version and lives in the codec.
"""

from __future__ import annotations

from ccfarm._record import record


class Need:
    """Type of the sentinel `NEED_DATA`: `next_event` needs more bytes.

    (A plain class, not an Enum: importing `enum` costs the wrapper time.)
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = Need()

#: distcc's protocol versions (there is no version 4 in distcc 3.4).
PLAIN = 1  # client preprocesses, no compression
LZO = 2  # client preprocesses, LZO bodies
PUMP = 3  # client sends the source and headers, daemon preprocesses
#: ccfarm's own extension of version 3: adds the client's environment
#: (locale, SOURCE_DATE_EPOCH) so diagnostics and macros match a local run.
#: Real distccd refuses it (any version above 3), so clients only send it
#: to hosts known to be ccfarmd.
CCFARM = 0x43460001
#: ccfarm's extension of version 2, the same environment items before argv
#: and the LZO-compressed .i: the preprocessed way to a ccfarmd host, which
#: can then carry `CCFARM_PRIORITY=express`
CCFARM_CPP = 0x43460002

VERSIONS = (PLAIN, LZO, PUMP, CCFARM, CCFARM_CPP)

#: client variables the ccfarm protocol carries (ENVV) because they change
#: what the compiler prints or embeds; a daemon honours only these
CLIENT_ENVIRONMENT = (
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "SOURCE_DATE_EPOCH",
    "GCC_COLORS",
    "GCC_URLS",
    "TERM_URLS",
    "TERM",
)

#: an ENVV item that is not for the compiler: `CCFARM_PRIORITY=express` asks
#: the daemon to run the job at once, ahead of its other jobs (the client
#: holds an express lease from the scheduler)
PRIORITY = "CCFARM_PRIORITY"


def sends_env(version: int) -> bool:
    """True when the request carries the client's environment (ENVC/ENVV)."""
    return version in (CCFARM, CCFARM_CPP)


def sends_files(version: int) -> bool:
    """True when the client sends source files instead of a .i body."""
    return version in (PUMP, CCFARM)


def compressed(version: int) -> bool:
    return version != PLAIN


@record
class JobHeader:
    """Everything before the bulk input: version, environment, cwd, argv."""

    version: int
    argv: tuple[bytes, ...]
    cwd: bytes | None = None
    env: tuple[bytes, ...] = ()


@record
class PreprocessedSource:
    """DOTI: the preprocessed translation unit (versions 1 and 2)."""

    data: bytes


@record
class FileEntry:
    """NAME + FILE: a regular file at the client's absolute path `name`."""

    name: bytes
    data: bytes


@record
class LinkEntry:
    """NAME + LINK: a symbolic link at `name` pointing to `target`."""

    name: bytes
    target: bytes


@record
class Inflate:
    """A compressed body (DOTI or FILE) for the caller to decompress to at most
    `limit` bytes, off its event loop, and hand back with
    `RequestParser.inflated`, which returns the body's event. Only from a
    parser made with `inline_inflate` (bodies that fit it are done inline)."""

    packed: bytes
    limit: int

    def __repr__(self) -> str:
        return f"Inflate(<{len(self.packed)} bytes>, limit={self.limit})"


@record
class RequestComplete:
    """The request has been read in full.

    `stored`: every compressed body in it came stored, not packed
    (`compression.is_stored`); a daemon answers such a client in kind."""

    stored: bool = False


@record
class ReplyHeader:
    """DONE: the daemon accepted and ran the job."""

    version: int


@record
class CompileStatus:
    """STAT: the compiler's raw wait status (exit code N is N << 8)."""

    wait_status: int

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None when the compiler died of a signal."""
        if self.wait_status & 0x7F:
            return None
        return (self.wait_status >> 8) & 0xFF


@record
class Stderr:
    data: bytes


@record
class Stdout:
    data: bytes


@record
class ObjectFile:
    """DOTO: the object (or assembly for -S); empty when the compile failed."""

    data: bytes


@record
class DepsFile:
    """DOTD: dependency text (version 3 and later, only after a success)."""

    data: bytes


@record
class ReplyComplete:
    """The whole reply has been read."""


RequestEvent = JobHeader | PreprocessedSource | FileEntry | LinkEntry | RequestComplete
ReplyEvent = ReplyHeader | CompileStatus | Stderr | Stdout | ObjectFile | DepsFile | ReplyComplete
