from __future__ import annotations

import pytest

from ccfarm._record import record, replace


@record
class Point:
    x: int
    y: int = 0


def test_record_behaves_like_a_frozen_dataclass() -> None:
    p = Point(1)
    assert p == Point(x=1, y=0) and p != Point(1, 2) and hash(p) == hash(Point(1, 0))
    assert repr(p) == "Point(x=1, y=0)"
    assert replace(p, y=5) == Point(1, 5)
    with pytest.raises(AttributeError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, x=2)  # type: ignore[misc]
    match p:
        case Point(a, b):
            assert (a, b) == (1, 0)
