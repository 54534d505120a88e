"""`@record`: a frozen value class, like `@dataclass(frozen=True)` but cheap.

The wrapper runs once per compile job and `import dataclasses` alone costs
about 9 ms (it pulls in `inspect`), most of a job's budget. `record` gives
the same shape for the simple cases used here: fields from the class
annotations, defaults from class attributes, keyword or positional
construction, equality, hashing, repr, and no assignment after creation.
Type checkers see it as a dataclass (PEP 681).
"""

from __future__ import annotations

MYPY = False
if MYPY:
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_kwargs: object):  # type: ignore[no-untyped-def]
        return lambda f: f


_MISSING = object()


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    fields: list[str] = []
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("__annotations__", {}):
            if name not in fields and not name.startswith("_"):
                fields.append(name)
    defaults = {f: cls.__dict__[f] for f in fields if f in cls.__dict__}
    names = tuple(fields)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes {len(names)} arguments")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{cls.__name__}: bad or repeated argument {key!r}")
            values[key] = value
        for name in names:
            value = values.get(name, defaults.get(name, _MISSING))
            if value is _MISSING:
                raise TypeError(f"{cls.__name__}: missing argument {name!r}")
            object.__setattr__(self, name, value)

    def _key(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in names)

    def __eq__(self: Any, other: object) -> bool:
        return other.__class__ is self.__class__ and _key(self) == _key(other)

    def __hash__(self: Any) -> int:
        # kept once computed: records are dictionary keys on hot paths
        # (the scheduler's indexes are keyed by compiler identity)
        cached: int | None = self.__dict__.get("_record_hash")
        if cached is None:
            cached = hash(_key(self))
            object.__setattr__(self, "_record_hash", cached)
        return cached

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__name__}({inner})"

    def __setattr__(self: Any, name: str, value: Any) -> None:
        raise AttributeError(f"{cls.__name__} is frozen")

    for func in (__init__, __eq__, __hash__, __repr__, __setattr__):
        setattr(cls, func.__name__, func)
    setattr(cls, "__match_args__", names)  # noqa: B010
    setattr(cls, "__record_fields__", names)  # noqa: B010
    return cls


def record_fields(cls: type) -> tuple[str, ...]:
    """The field names of a `@record` class, in order."""
    names: tuple[str, ...] = cls.__record_fields__  # type: ignore[attr-defined]
    return names


def replace(obj: T, **changes: object) -> T:
    """A copy of record `obj` with some fields changed."""
    names = obj.__record_fields__  # type: ignore[attr-defined]
    values = {n: getattr(obj, n) for n in names}
    values.update(changes)
    return type(obj)(**values)
