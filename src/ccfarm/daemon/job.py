"""From a received request to a compile plan, and from results to a reply.

No sockets here: the service feeds request events in and runs the plan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ccfarm.compiler.daemon_args import (
    DaemonJob,
    Refusal,
    check_request_args,
    daemon_argv_preprocessed,
    daemon_argv_rooted,
    rewrite_deps_text,
)
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.daemon.workspace import Workspace
from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import (
    CLIENT_ENVIRONMENT,
    PRIORITY,
    FileEntry,
    JobHeader,
    LinkEntry,
    sends_env,
    sends_files,
)


@dataclass(frozen=True)
class CompilePlan:
    program: str
    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    version: int
    root: str | None  # set when the client's files were mirrored (version 3+)
    dep_target: str | None
    system_deps: bool = True  # the client's .d lists system headers (-MD, not -MMD)
    job_dir: str = ""  # the job's directory: all the compiler may write (the sandbox's)
    stored: bool = False  # the reply's bodies stored, not packed, as the request's came


def program_of(header: JobHeader, compilers: CompilerAllowList) -> str:
    """The allowed compiler a request names, as a path (RemoteProtocolError if none)."""
    if not header.argv:
        raise RemoteProtocolError("no command")
    try:
        return compilers.resolve(compilers.check(os.fsdecode(header.argv[0])))
    except ValueError as exc:
        raise RemoteProtocolError(str(exc)) from None


class JobBuilder:
    """Collects one request's events into a workspace; then `plan()`."""

    def __init__(self, header: JobHeader, compilers: CompilerAllowList, ws: Workspace) -> None:
        self.header = header
        self.ws = ws
        argv = [os.fsdecode(a) for a in header.argv]
        self.program = program_of(header, compilers)
        cwd = os.fsdecode(header.cwd) if header.cwd is not None else None
        checked = check_request_args(argv, version=header.version, cwd=cwd)
        if isinstance(checked, Refusal):
            raise RemoteProtocolError(f"refused arguments: {checked.reason}")
        self.job: DaemonJob = checked
        self._input: str | None = None
        #: the request's compressed bodies came stored (`RequestComplete.stored`)
        self.stored = False

    def add_source(self, data: bytes) -> None:
        self._input = self.ws.write_input(self.job.input_suffix, data)

    def add_entry(self, entry: FileEntry | LinkEntry) -> None:
        if isinstance(entry, FileEntry):
            self.ws.add_file(entry.name, entry.data)
        else:
            self.ws.add_link(entry.name, entry.target)

    @property
    def express(self) -> bool:
        """Did the client ask to run ahead of the other jobs (an express lease)?"""
        wanted = f"{PRIORITY}=express".encode()
        return sends_env(self.header.version) and wanted in self.header.env

    def plan(self, base_env: Mapping[str, str]) -> CompilePlan:
        env = dict(base_env)
        env["TMPDIR"] = self.ws.path
        if sends_env(self.header.version):
            for key in CLIENT_ENVIRONMENT:
                env.pop(key, None)
            for item in self.header.env:
                key, _, value = os.fsdecode(item).partition("=")
                if key in CLIENT_ENVIRONMENT:
                    env[key] = value
        if not sends_files(self.header.version):
            if self._input is None:
                raise RemoteProtocolError("no preprocessed source received")
            argv = daemon_argv_preprocessed(self.job, self._input, self.ws.output)
            return CompilePlan(
                self.program,
                tuple(argv),
                self.ws.path,
                env,
                self.header.version,
                None,
                None,
                job_dir=self.ws.path,
                stored=self.stored,
            )
        assert self.header.cwd is not None
        cwd = self.ws.client_dir(self.header.cwd)
        rooted = daemon_argv_rooted(
            self.job, root=self.ws.root, output_path=self.ws.output, deps_path=self.ws.deps
        )
        return CompilePlan(
            self.program,
            tuple(rooted.argv),
            cwd,
            env,
            self.header.version,
            self.ws.root,
            rooted.dep_target,
            rooted.system_deps,
            self.ws.path,
            self.stored,
        )


def unroot(plan: CompilePlan, text: bytes) -> bytes:
    """Remove the mirror root from compiler messages (paths read as the client's)."""
    if plan.root is None:
        return text
    return text.replace(os.fsencode(plan.root), b"")


def deps_reply(plan: CompilePlan, raw: bytes) -> bytes:
    if plan.root is None:
        return b""
    target = os.fsencode(plan.dep_target) if plan.dep_target is not None else None
    return rewrite_deps_text(
        raw, root=os.fsencode(plan.root), target=target, system=plan.system_deps
    )


def check_reads(plan: CompilePlan, ws: Workspace, messages: bytes) -> None:
    """Refuse the result if the compile read a file outside the job and the
    host's system headers: the reply would carry it in a message or the
    object. Protocol 3+: every file of its `-MD` list (an absolute
    `#include`, a path that climbs out, a link), and a list that is missing
    or unclear, and the files the messages' locations name (a line marker
    can name any file, and gcc shows the line under a warning; protocols 1
    and 2 compile with `-fno-diagnostics-show-caret` instead, as the
    client's files are not here and the host's may be anything).
    """
    if plan.root is None:
        return
    outside = ws.reads_outside(plan.cwd)
    if outside:
        raise RemoteProtocolError(f"refused result: the compile read {outside!r}")
    if messages:
        named = ws.messages_name_outside(messages, plan.cwd)
        if named:
            raise RemoteProtocolError(f"refused result: a message shows a line of {named!r}")


def wait_status(returncode: int) -> int:
    """asyncio's returncode (negative = signal) as a raw wait status."""
    if returncode < 0:
        return -returncode & 0x7F
    return (returncode & 0xFF) << 8
