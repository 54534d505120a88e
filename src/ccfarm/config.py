"""Configuration declared once: a program's settings are the fields of one
frozen dataclass, and all an operator sees of them is generated from there.

A field made with `setting()` carries its default, its help text and, where
they differ from the field's name, its command-line spellings (short flags,
distccd's aliases). From those fields come:

* the flags: `--field-name` or the declared spellings; a boolean gets both
  `--name` and `--no-name` (so a flag can undo what a file set), a tuple is
  a repeatable flag;
* the TOML keys: the field's name and its long flags' names, written with
  dashes or underscores, in a table named after the program (`[ccfarmd]`)
  or at the top level of the file; each value is checked against the
  field's type;
* the `--help` text, each line ending with the default.

A field made with `group()` holds a dataclass of further settings (the
scheduler's `Policy`): its fields become flags and keys of their own names,
listed under the group's heading in `--help`.

Precedence: command-line flag > environment variable (a setting declared
with `env=`) > TOML file > default. The file is `--config FILE`, else
`/etc/ccfarm/PROGRAM.toml` and then `$XDG_CONFIG_HOME/ccfarm/PROGRAM.toml`
(`~/.config/...`), each where it exists, the second over the first. A
mistake in a file or a variable is a `ConfigError` naming the key on one
line; a bad flag is argparse's usage error.

So a new knob is one field, `name: T = setting(default, "help")`, in the
program's config class (or in `scheduler.policy.Policy`); its flag, key and
help line follow. The field types are read with `typing.get_type_hints`, so
the names in annotations must be importable from the class's module.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import os
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ccfarm import __version__
from ccfarm.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")
V = TypeVar("V")

_SETTING = "ccfarm.setting"
_GROUP = "ccfarm.group"
#: how a value of each type is named in messages: one, several
_NOUNS: dict[type, tuple[str, str]] = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    bool: ("true or false", "booleans"),
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """How operators spell and read about one config field (its metadata)."""

    help: str
    #: command-line spellings; empty means `--field-name`
    flags: tuple[str, ...] = ()
    metavar: str = ""
    choices: tuple[str, ...] = ()
    #: the default as `--help` shows it, when the value alone does not say
    #: what it means ("CPUs", "0 = unlimited")
    shown: str = ""
    #: an environment variable that sets it (under the flag, over the file)
    env: str = ""


def setting(
    default: V,
    help: str,
    *,
    flags: Sequence[str] = (),
    metavar: str = "",
    choices: Sequence[str] = (),
    shown: str = "",
    env: str = "",
) -> V:
    """A config field: its default, and how flags, files and `--help` show it."""
    spec = Setting(help, tuple(flags), metavar, tuple(choices), shown, env)
    return dataclasses.field(default=default, metadata={_SETTING: spec})


def group(cls: Callable[[], V], title: str) -> V:
    """A config field holding another dataclass of settings, flattened into
    this program's flags and keys under the heading `title`."""
    return dataclasses.field(default_factory=cls, metadata={_GROUP: title})


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting as a program spells it: where it sits, its type, flags, keys."""

    #: field names from the program's config down to this setting
    path: tuple[str, ...]
    #: int, float, str, bool, or tuple[X, ...] for a repeatable setting
    kind: Any
    default: Any
    spec: Setting
    #: heading of the group it belongs to; "" for the program's own settings
    group: str

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def dest(self) -> str:
        return ".".join(self.path)

    @property
    def flags(self) -> tuple[str, ...]:
        return self.spec.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def keys(self) -> tuple[str, ...]:
        """Its TOML keys, dashes written as underscores."""
        longs = [f[2:].replace("-", "_") for f in self.flags if f.startswith("--")]
        return tuple(dict.fromkeys([self.name, *longs]))

    @property
    def repeatable(self) -> bool:
        return typing.get_origin(self.kind) is tuple

    @property
    def item(self) -> type:
        """The type of one value: of the setting, or of one of its items."""
        item: type = typing.get_args(self.kind)[0] if self.repeatable else self.kind
        return item

    def shown_default(self) -> str:
        if self.spec.shown:
            return self.spec.shown
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, tuple):
            return ", ".join(value) or "none"
        return str(value) if value != "" else "none"

    def help_text(self) -> str:
        text = self.spec.help + ("; repeatable" if self.repeatable else "")
        env = f"; env {self.spec.env}" if self.spec.env else ""
        return f"{text} (default: {self.shown_default()}{env})"


# -- the settings of a config class ----------------------------------------


@functools.cache
def options(cls: type[DataclassInstance]) -> tuple[Option, ...]:
    """Every setting of config class `cls`, groups flattened, in field order."""
    found = tuple(_walk(cls, (), ""))
    owner: dict[str, Option] = {}
    for option in found:
        for key in option.keys:
            if key in owner:
                raise TypeError(f"{cls.__name__}: {option.dest} and {owner[key].dest} share {key}")
            owner[key] = option
    return found


def _walk(cls: type[DataclassInstance], path: tuple[str, ...], title: str) -> Iterator[Option]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        here = (*path, field.name)
        if _GROUP in field.metadata:
            yield from _walk(hints[field.name], here, field.metadata[_GROUP])
        elif _SETTING in field.metadata:
            option = Option(here, hints[field.name], field.default, field.metadata[_SETTING], title)
            if option.item not in _NOUNS:
                raise TypeError(f"{cls.__name__}.{field.name}: no flag or key for {option.kind}")
            yield option
        else:
            raise TypeError(f"{cls.__name__}.{field.name} is declared without setting()")


def build(cls: type[C], values: Mapping[str, Any]) -> C:
    """An instance of `cls` from settings by `Option.dest`; the rest keep defaults."""
    return _build(cls, values, ())


def _build(cls: type[C], values: Mapping[str, Any], path: tuple[str, ...]) -> C:
    hints = typing.get_type_hints(cls)
    given: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        here = (*path, field.name)
        if _GROUP in field.metadata:
            given[field.name] = _build(hints[field.name], values, here)
        elif ".".join(here) in values:
            given[field.name] = values[".".join(here)]
    return cls(**given)


# -- flags -------------------------------------------------------------------


def command_line(
    cls: type[DataclassInstance], prog: str, description: str
) -> argparse.ArgumentParser:
    """The program's parser: `--version`, `--config FILE`, and a flag per setting."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML file: a [{prog}] table, or top-level keys named like the flags;"
        " environment variables and flags override it"
        f" (default: {SYSTEM_CONFIG_DIR}/{prog}.toml, then ~/.config/ccfarm/{prog}.toml,"
        " where they exist)",
    )
    titles = dict.fromkeys(o.group for o in options(cls) if o.group)
    headings = {title: parser.add_argument_group(title) for title in titles}
    for option in options(cls):
        where = headings[option.group] if option.group else parser
        where.add_argument(*option.flags, **_flag(option))
    return parser


def _flag(option: Option) -> dict[str, Any]:
    """add_argument's keywords for one setting; absent flags leave no value."""
    flag: dict[str, Any] = {
        "dest": option.dest,
        "default": argparse.SUPPRESS,
        "help": option.help_text().replace("%", "%%"),
    }
    if option.kind is bool:
        flag["action"] = argparse.BooleanOptionalAction
        return flag
    flag["type"] = option.item
    if option.spec.choices:
        flag["choices"] = option.spec.choices
    else:
        flag["metavar"] = option.spec.metavar or option.name.upper()
    if option.repeatable:
        flag["action"] = "append"
    return flag


def flag_values(cls: type[DataclassInstance], args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, by `Option.dest` (repeated flags as tuples)."""
    given = vars(args)
    values = {o.dest: given[o.dest] for o in options(cls) if o.dest in given}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


# -- TOML --------------------------------------------------------------------


def read_toml(cls: type[DataclassInstance], path: str, table: str) -> dict[str, Any]:
    """The settings in TOML file `path`, by `Option.dest`: its `[table]`, or
    its top-level keys (other tables there belong to other programs)."""
    import tomllib  # here, not above: it pulls in datetime, for --config only

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if table in data:
        section = data[table]
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{table}] must be a table")
    else:
        section = {k: v for k, v in data.items() if not isinstance(v, dict)}
    return file_values(cls, section, where=f"{path}: ")


def file_values(
    cls: type[DataclassInstance], section: Mapping[str, object], where: str = ""
) -> dict[str, Any]:
    """`section`'s settings by `Option.dest`, each value checked against its
    field's type, so a mistake is reported by key, before anything starts."""
    by_key = {key: option for option in options(cls) for key in option.keys}
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    unknown = []
    for key, value in section.items():
        option = by_key.get(key.replace("-", "_"))
        if option is None:
            unknown.append(key)
        elif option.dest in seen:
            raise ConfigError(f"{where}{key} and {seen[option.dest]} are the same setting")
        else:
            seen[option.dest] = key
            values[option.dest] = _checked(option, key, value, where)
    if unknown:
        raise ConfigError(f"{where}{_unknown(unknown, list(by_key))}")
    return values


def _checked(option: Option, key: str, value: object, where: str) -> Any:
    """`value` as the setting's type, or a ConfigError naming `key`."""
    one, several = _NOUNS[option.item]
    if option.repeatable:
        if not isinstance(value, list) or not all(_fits(option.item, v) for v in value):
            raise ConfigError(f"{where}{key} must be a list of {several}, not {value!r}")
        items = value
    elif _fits(option.item, value):
        items = [value]
    else:
        raise ConfigError(f"{where}{key} must be {one}, not {value!r}")
    for item in items:
        if option.spec.choices and item not in option.spec.choices:
            choices = ", ".join(option.spec.choices)
            raise ConfigError(f"{where}{key} must be one of {choices}, not {item!r}")
    checked = [float(v) if option.item is float else v for v in items]
    return tuple(checked) if option.repeatable else checked[0]


def _fits(kind: type, value: object) -> bool:
    if isinstance(value, bool) and kind is not bool:  # True is an int to Python
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _unknown(keys: list[str], known: list[str]) -> str:
    def named(key: str) -> str:
        near = difflib.get_close_matches(key.replace("-", "_"), known, n=1)
        return f"{key} (did you mean {near[0]}?)" if near else key

    return f"unknown key{'s' if len(keys) > 1 else ''} " + ", ".join(named(k) for k in keys)


# -- the farm secret, the same setting in every program -------------------------

SECRET_FILE_HELP = (
    "the farm secret, in a file others may not read: every control connection"
    " and ccfarm compile connection must prove it (and this program checks its peers)"
)


def secret_file_setting() -> str:
    """The `secret_file` field of a program's config class."""
    return setting("", SECRET_FILE_HELP, metavar="FILE", shown="none: no authentication")


def add_secret_file(parser: argparse.ArgumentParser) -> None:
    """`--secret-file FILE` for the programs without a config class (ccfarm-ctl),
    defaulting, as the wrapper does, to `$CCFARM_SECRET_FILE`."""
    from ccfarm.secretfile import ENVIRONMENT

    parser.add_argument(
        "--secret-file",
        metavar="FILE",
        default=os.environ.get(ENVIRONMENT, ""),
        help=f"{SECRET_FILE_HELP} (default: ${ENVIRONMENT}, else none)",
    )


# -- TLS, the same settings in the servers and the clients --------------------

TLS_CERT_HELP = "this program's TLS certificate (PEM, with any intermediate CAs)"
TLS_KEY_HELP = "the private key of --tls-cert (PEM)"


def tls_cert_setting(role: str) -> str:
    """The `tls_cert` field of a server's config class; `role` says what the
    certificate does there."""
    return setting("", f"{TLS_CERT_HELP}: {role}", metavar="FILE", shown="none: no TLS")


def tls_key_setting() -> str:
    return setting("", TLS_KEY_HELP, metavar="FILE", shown="none")


def tls_ca_setting(role: str) -> str:
    return setting("", f"the farm's CA certificate(s) (PEM): {role}", metavar="FILE", shown="none")


def tls_require_setting(what: str) -> bool:
    return setting(False, f"refuse {what} that are not TLS")


def add_tls(parser: argparse.ArgumentParser) -> None:
    """`--tls-ca`, `--tls-cert`, `--tls-key` for a client without a config
    class (ccfarm-ctl), defaulting, as the wrapper does, to `$CCFARM_TLS_CA`,
    `$CCFARM_TLS_CERT` and `$CCFARM_TLS_KEY`."""
    from ccfarm.tls import CA_ENV, CERT_ENV, KEY_ENV

    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=os.environ.get(CA_ENV, ""),
        help="connect with TLS and check the scheduler's certificate against this CA"
        f" (PEM) and the name dialled (default: ${CA_ENV}, else no TLS)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        default=os.environ.get(CERT_ENV, ""),
        help=f"{TLS_CERT_HELP}, presented to the scheduler (default: ${CERT_ENV}, else none)",
    )
    parser.add_argument(
        "--tls-key",
        metavar="FILE",
        default=os.environ.get(KEY_ENV, ""),
        help=f"{TLS_KEY_HELP} (default: ${KEY_ENV}, else none)",
    )


# -- the environment ---------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def env_values(cls: type[DataclassInstance], environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings given by environment variables (`setting(env=...)`), by `Option.dest`."""
    values: dict[str, Any] = {}
    for option in options(cls):
        name = option.spec.env
        if name and name in environ:
            values[option.dest] = _from_text(option, environ[name], name)
    return values


def _from_text(option: Option, text: str, name: str) -> Any:
    """A variable's text as the setting's type (a list: comma- or space-separated)."""
    if option.item is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ConfigError(f"{name} must be 1 or 0, not {text!r}")
        return text.lower() in _TRUE
    items = text.replace(",", " ").split() if option.repeatable else [text]
    try:
        converted = [option.item(item) for item in items]
    except ValueError:
        raise ConfigError(f"{name} must be {_NOUNS[option.item][0]}, not {text!r}") from None
    return _checked(option, name, converted if option.repeatable else converted[0], "")


# -- a program's configuration -------------------------------------------------

#: where each program's file is looked for, without --config
SYSTEM_CONFIG_DIR = "/etc/ccfarm"


def default_files(prog: str, environ: Mapping[str, str]) -> list[str]:
    """The files read without `--config`: the system's, then the user's."""
    home = environ.get("HOME", "")
    user = environ.get("XDG_CONFIG_HOME") or (f"{home}/.config" if home else "")
    found = [f"{SYSTEM_CONFIG_DIR}/{prog}.toml"]
    if user:
        found.append(f"{user}/ccfarm/{prog}.toml")
    return found


def load(
    cls: type[C],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    environ: Mapping[str, str] | None = None,
) -> C:
    """The program's config: flags over environment variables over the
    config file(s) (the table named after the program) over the defaults."""
    import os

    environ = os.environ if environ is None else environ
    args = parser.parse_args(argv)
    if args.config:
        values = read_toml(cls, args.config, parser.prog)
    else:
        values = {}
        for path in default_files(parser.prog, environ):
            if os.path.exists(path):
                values.update(read_toml(cls, path, parser.prog))
    values.update(env_values(cls, environ))
    values.update(flag_values(cls, args))
    return build(cls, values)


__all__ = [
    "SECRET_FILE_HELP",
    "Option",
    "Setting",
    "add_secret_file",
    "add_tls",
    "build",
    "command_line",
    "default_files",
    "env_values",
    "file_values",
    "flag_values",
    "group",
    "load",
    "options",
    "read_toml",
    "secret_file_setting",
    "setting",
    "tls_ca_setting",
    "tls_cert_setting",
    "tls_key_setting",
    "tls_require_setting",
]
