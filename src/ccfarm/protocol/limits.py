"""Named limits on what a peer may send (design rule: every resource has one)."""

from __future__ import annotations

from ccfarm._record import record

MiB = 1 << 20


@record
class Limits:
    max_args: int = 10_000
    max_arg_bytes: int = 128 * 1024
    max_env: int = 64
    max_files: int = 100_000
    max_name_bytes: int = 4096
    #: largest bulk body on the wire (DOTI, FILE, DOTO, SERR, ...)
    max_body: int = 1024 * MiB
    #: largest body after LZO decompression
    max_plain_body: int = 1024 * MiB
    #: total plain bytes of all FILE entries of one request
    max_request_bytes: int = 2048 * MiB
