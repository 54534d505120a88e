"""The farm secret's file: read once at start, refused if others may read it.

A secret is the file's bytes without surrounding white space, at least
`MIN_SECRET` (16) bytes: `head -c 32 /dev/urandom | base64 > farm.secret;
chmod 600 farm.secret` makes a good one. The same file (or a copy) goes to
every scheduler, host, build machine and operator of the farm.
"""

from __future__ import annotations

import os
import stat

from ccfarm.errors import ConfigError

MIN_SECRET = 16  # the same as protocol.auth.MIN_SECRET (not imported: hashlib, hmac)
MAX_SECRET = 4096
ENVIRONMENT = "CCFARM_SECRET_FILE"


def read_secret(path: str) -> bytes:
    """The secret in `path`; ConfigError (saying what is wrong) if it is
    missing, not a regular file, readable or writable by others, too short
    or too long."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError as exc:
        raise ConfigError(f"secret file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"secret file {path} is not a regular file")
        if info.st_mode & (stat.S_IROTH | stat.S_IWOTH):
            raise ConfigError(
                f"secret file {path} is readable or writable by every user; refusing it"
                f" (chmod o-rw {path})"
            )
        data = os.read(fd, MAX_SECRET + 1)
    except OSError as exc:
        raise ConfigError(f"secret file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET:
        raise ConfigError(f"secret file {path} is longer than {MAX_SECRET} bytes")
    secret = data.strip()
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"secret file {path} holds fewer than {MIN_SECRET} bytes of secret")
    return secret


def secret_from(path: str) -> bytes | None:
    """`read_secret(path)`, or None for no path (no authentication)."""
    return read_secret(path) if path else None


__all__ = ["ENVIRONMENT", "MIN_SECRET", "read_secret", "secret_from"]
