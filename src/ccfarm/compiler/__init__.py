"""Compiler command lines: what can be distributed and how to rewrite it (pure)."""

from ccfarm.compiler.args import CompileJob, DepRequest, LocalOnly, analyse
from ccfarm.compiler.identity import CompilerIdentity, parse_version_output

__all__ = [
    "CompileJob",
    "CompilerIdentity",
    "DepRequest",
    "LocalOnly",
    "analyse",
    "parse_version_output",
]
