"""Configuration: frozen dataclasses filled from flags, environment and TOML.

Precedence: command-line flag > TOML file (`--config FILE`) > default. Each
flag maps 1:1 to a field of the same name (dashes become underscores); a
TOML file uses the same names inside a table named after the program
(`[ccfarmd]`), or at top level.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar

from ccfarm.errors import ConfigError

T = TypeVar("T")


def load_toml(path: str, table: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    section = data.get(table, data)
    if not isinstance(section, dict):
        raise ConfigError(f"[{table}] in {path} must be a table")
    return {k.replace("-", "_"): v for k, v in section.items() if not isinstance(v, dict)}


def build(cls: type[T], args: argparse.Namespace, file_values: Mapping[str, Any]) -> T:
    """An instance of dataclass `cls`: flags given > file values > defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(file_values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(file_values)
    for name in fields:
        given = getattr(args, name, None)
        if given is not None and given != []:
            values[name] = given
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
