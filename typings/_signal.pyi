# The C module under `signal`; the wrapper imports it directly (`signal`
# costs ~2.5 ms at start-up for its enums). Only what ccfarm uses.
from collections.abc import Callable
from types import FrameType

SIGINT: int
SIGPIPE: int
SIG_DFL: int
SIG_IGN: int

def signal(
    signalnum: int, handler: int | Callable[[int, FrameType | None], object]
) -> int | Callable[[int, FrameType | None], object] | None: ...
