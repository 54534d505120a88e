"""Man pages from the programs' own `--help` sources.

Each page's OPTIONS come from the program's argparse parser (for ccfarmd and
the scheduler: generated from their config classes, `ccfarm.config`), the
wrapper's and gethost's from the text their `--help` prints; the sections
around them (files, environment, exit status, signals) are written here.
`scripts/manpages.py` writes them to `man/`; a unit test fails when the
committed pages differ from what this module makes, so a new flag cannot
miss its page.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from ccfarm import __version__

SECTION = "1"


def _roff(text: str) -> str:
    """Text as roff source: backslashes and dashes escaped, no line a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + ln if ln.startswith((".", "'")) else ln for ln in text.split("\n"))


def _literal(text: str) -> str:
    return ".nf\n" + _roff(text.rstrip("\n")) + "\n.fi"


def _options(parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    out = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if not actions:
            continue
        title = group.title or "options"
        out.append(".SS " + _roff(title[0].upper() + title[1:]))
        for action in actions:
            invocation = formatter._format_action_invocation(action)
            helptext = (action.help or "").replace("%%", "%")
            if action.choices and not action.option_strings:
                helptext = helptext or "one of " + ", ".join(map(str, action.choices))
            out.append(f".TP\n.B {_roff(invocation)}\n{_roff(helptext)}")
    return "\n".join(out)


def _usage(parser: argparse.ArgumentParser) -> str:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal: the page must not vary
    try:
        usage = parser.format_usage().removeprefix("usage: ")
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return _literal(_hang(usage))


def _hang(text: str) -> str:
    """A usage's continuation lines indented by four, however argparse did."""
    first, *rest = text.strip("\n").split("\n")
    return "\n".join([first.strip(), *("    " + line.strip() for line in rest)])


def page(prog: str) -> str:
    """The man page of program `prog`, as roff source."""
    summary, synopsis, body = _PROGRAMS[prog]()
    sections = [
        f'.TH {prog.upper()} {SECTION} "" "ccfarm {__version__}" "ccfarm manual"',
        f".SH NAME\n{_roff(prog)} \\- {_roff(summary)}",
        f".SH SYNOPSIS\n{synopsis}",
        body,
    ]
    for title, text in _EXTRA.get(prog, ()):
        sections.append(f".SH {title}\n{_literal(text)}")
    others = [p for p in sorted(_PROGRAMS) if p != prog]
    sections.append(".SH SEE ALSO\n" + ", ".join(f"\\fB{_roff(p)}\\fR({SECTION})" for p in others))
    return "\n".join(sections) + "\n"


def _daemon() -> tuple[str, str, str]:
    from ccfarm.daemon.main import parser

    p = parser()
    text = (
        "The compile daemon of each host of a farm, a drop-in for distccd: it takes jobs"
        " over the distcc protocol (and ccfarm's exact mode) from the networks given with"
        " --allow, runs the compiler in a private directory and sends back the results."
        " With --scheduler it joins a ccfarm-scheduler, which hands its slots to the builds."
        " It binds its port before going into the background, and the command exits"
        " only when the daemon is ready (status 0) or failed (a message, non-zero)."
    )
    return (
        p.description or "",
        _usage(p),
        f".SH DESCRIPTION\n{_roff(text)}\n.SH OPTIONS\n" + (_options(p)),
    )


def _scheduler() -> tuple[str, str, str]:
    from ccfarm.scheduler.main import parser

    p = parser()
    text = (
        "The farm's host-server: compile hosts (ccfarmd --scheduler) report to it, and each"
        " compile job of a build asks it for a lease on the fastest free compatible host."
        " It logs hosts joining, leaving, drained and quarantined at info level."
    )
    return (
        p.description or "",
        _usage(p),
        f".SH DESCRIPTION\n{_roff(text)}\n.SH OPTIONS\n" + (_options(p)),
    )


def _ctl() -> tuple[str, str, str]:
    from ccfarm.cli.ctl import parser

    p = parser()
    lines = (p.description or "").strip().split("\n")
    synopsis = _literal("\n".join(ln for ln in lines[1:] if ln.startswith("ccfarm-ctl")))
    rest = "\n".join(ln for ln in lines[1:] if not ln.startswith("ccfarm-ctl")).strip()
    body = f".SH DESCRIPTION\n{_roff(rest)}\n.SH OPTIONS\n{_options(p)}"
    return lines[0].strip("`: ").removeprefix("ccfarm-ctl`: "), synopsis, body


def _wrapper() -> tuple[str, str, str]:
    from ccfarm.client.job.command import USAGE

    usage, _, rest = USAGE.partition("\n\n")
    description, _, environment = rest.partition("\n\n")
    synopsis = _literal(_hang(usage.removeprefix("usage: ")))
    body = f".SH DESCRIPTION\n{_roff(' '.join(description.split()))}\n"
    body += f".SH ENVIRONMENT\n{_literal(environment.partition(chr(10))[2])}"
    return "the compiler wrapper of a compile farm", synopsis, body


def _gethost() -> tuple[str, str, str]:
    from ccfarm.cli import gethost

    doc = (gethost.__doc__ or "").strip()
    first, _, rest = doc.partition("\n\n")
    example, _, text = rest.partition("\n\n")
    synopsis = _literal("ccfarm-gethost COMMAND [ARGS...]\nccfarm-gethost --help | --version")
    body = f".SH DESCRIPTION\n{_literal(example.strip())}\n.PP\n{_roff(' '.join(text.split()))}"
    return "run a command with a host leased from the scheduler", synopsis, body


_PROGRAMS: dict[str, Callable[[], tuple[str, str, str]]] = {
    "ccfarm": _wrapper,
    "ccfarmd": _daemon,
    "ccfarm-scheduler": _scheduler,
    "ccfarm-ctl": _ctl,
    "ccfarm-gethost": _gethost,
}

_DAEMON_FILES = """\
/etc/ccfarm/PROGRAM.toml, then ~/.config/ccfarm/PROGRAM.toml ($XDG_CONFIG_HOME)
    settings, each where it exists; --config FILE reads FILE instead.
    Keys are the flags' names (dashes or underscores), in a [PROGRAM] table
    or at the top level. Precedence: defaults < files < environment < flags.
"""

_EXTRA: dict[str, tuple[tuple[str, str], ...]] = {
    "ccfarmd": (
        ("FILES", _DAEMON_FILES.replace("PROGRAM", "ccfarmd")),
        (
            "ENVIRONMENT",
            "DISTCCD_PATH    the compiler path (--compiler-path), else $PATH\n"
            "TMPDIR          where job directories are made (--tmpdir)\n"
            "NOTIFY_SOCKET   systemd's: READY=1 once listening, STOPPING=1 on SIGTERM",
        ),
        (
            "SIGNALS",
            "SIGTERM, SIGINT  drain: no new jobs, running ones finish (--drain-timeout)\n"
            "SIGHUP           reopen --log-file (after logrotate moved it)",
        ),
        (
            "EXIT STATUS",
            "0    stopped normally, or (detaching) ready\n"
            "1    a start-up error after the port was bound (the pid file)\n"
            "101  bad settings (distcc's EXIT_BAD_ARGUMENTS); also --zeroconf and --inetd\n"
            "102  cannot listen: port taken, bad address (distcc's EXIT_BIND_FAILED)",
        ),
        (
            "LOGGING",
            "--log-file FILE, else syslog (/dev/log, facility daemon) when detached,\n"
            "else stderr (under systemd: the journal).",
        ),
    ),
    "ccfarm-scheduler": (
        ("FILES", _DAEMON_FILES.replace("PROGRAM", "ccfarm-scheduler")),
        ("ENVIRONMENT", "NOTIFY_SOCKET   systemd's: READY=1 once listening, STOPPING=1 on SIGTERM"),
        (
            "SIGNALS",
            "SIGTERM, SIGINT  stop: every connection ends (its leases with it)\n"
            "SIGHUP           reopen --log-file",
        ),
        (
            "EXIT STATUS",
            "0    stopped normally, or (with --detach) ready\n"
            "1    a start-up error after the port was bound (the pid file)\n"
            "101  bad settings, an unreadable --hosts-info file\n"
            "102  cannot listen: port taken, bad address",
        ),
    ),
    "ccfarm-ctl": (
        ("ENVIRONMENT", "CCFARM_SCHEDULER   the default --scheduler"),
        (
            "EXIT STATUS",
            "0    done\n"
            "1    the scheduler refused the command\n"
            "2    usage error\n"
            "3    bad --scheduler address (cannot be parsed or resolved)\n"
            "4    no scheduler listening there, unreachable, or no answer in time\n"
            "5    the answer was not the scheduler's protocol\n"
            "6    no host, or more than one, matches the name given\n"
            "141  the output's reader went away (| head)",
        ),
    ),
    "ccfarm-gethost": (
        (
            "ENVIRONMENT",
            "CCFARM_SCHEDULER   the scheduler(s) to ask\n"
            "CCFARM_LEASE_WAIT  seconds to wait for a free slot (60)\n"
            "DISTCC_HOSTS       set for COMMAND to the host leased",
        ),
        ("EXIT STATUS", "COMMAND's; 127 if it cannot be run; 101 without a COMMAND"),
    ),
    "ccfarm": (
        (
            "EXIT STATUS",
            "The compiler's; 116 when a remote failure may not fall back (CCFARM_FALLBACK=0);\n"
            "101 for a command line that names no compiler.",
        ),
    ),
}


def programs() -> list[str]:
    return sorted(_PROGRAMS)


__all__ = ["page", "programs"]
