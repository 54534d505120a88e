"""The daemon's user: started as root, ccfarmd becomes an unprivileged account.

As distccd: `--user NAME` when given, else the first account of
`DEFAULT_USERS` that exists (ccfarm never creates one: the administrator
does). Root is given up for good (supplementary groups, group, user: real,
effective and saved) once the port is bound and the pid file and log are
open; started as anyone else, the daemon stays who it is.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Sequence

from ccfarm.errors import ConfigError

#: distccd's choice (`distcc`, else `nobody`), with ccfarm's own account first
DEFAULT_USERS = ("ccfarmd", "distcc", "nobody")


def choose_account(
    wanted: str,
    lookup: Callable[[str], pwd.struct_passwd],
    candidates: Sequence[str] = DEFAULT_USERS,
) -> pwd.struct_passwd:
    """The account to run as: `wanted`, else the first candidate that exists."""
    names = [wanted] if wanted else list(candidates)
    for name in names:
        try:
            account = lookup(name)
        except KeyError:
            continue
        if account.pw_uid == 0 or account.pw_gid == 0:
            raise ConfigError(f"--user {name}: ccfarmd does not run compilers as root")
        return account
    if wanted:
        raise ConfigError(f"--user {wanted}: no such user")
    listed = ", ".join(candidates)
    raise ConfigError(f"none of the users {listed} exists; create one or give --user")


def drop_root(wanted: str) -> str:
    """Become the unprivileged account when running as root; the user's name after.

    Raises ConfigError when there is no account to become, or root could
    not be given up completely.
    """
    if os.getuid() != 0 and os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name if _known(os.getuid()) else str(os.getuid())
    account = choose_account(wanted, pwd.getpwnam)
    os.setgroups([])
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    if 0 in os.getresuid() or 0 in os.getresgid() or os.getgroups():
        raise ConfigError(f"could not give up root for user {account.pw_name}")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise ConfigError("could become root again after giving it up")
    os.environ["HOME"] = account.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = account.pw_name
    return account.pw_name


def _known(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


__all__ = ["DEFAULT_USERS", "choose_account", "drop_root"]
