"""`ccfarmd --stats`: distccd's read-only status page on its own port.

Any connection (an HTTP GET from a browser or `curl`, or nothing at all)
gets one plain-text HTTP/1.0 answer in distccd's layout: `key value` lines
between `<distccstats>` tags; then the connection closes. Nothing read from
the peer is interpreted. The keys distccd has and ccfarmd measures the same
way keep distccd's names (`dcc_max_kids`, `dcc_current_load`, `dcc_load1`);
the rest are ccfarmd's own (`ccfarm_*`), not distccd's figures under its
names. Clients outside `--allow` get no page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from ccfarm import __version__

log = logging.getLogger("ccfarmd")
#: how long the page waits for the peer's request before answering anyway
REQUEST_WAIT = 1.0


def stats_page(figures: dict[str, object]) -> bytes:
    """The HTTP answer for `figures` (key -> value), in distccd's layout."""
    lines = ["argv ccfarmd", "<distccstats>"]
    for key, value in figures.items():
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"{key} {text}")
    lines.append("</distccstats>")
    head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    return (head + "\n".join(lines) + "\n").encode()


def daemon_figures(slots: int, running: int, jobs_done: int, draining: bool) -> dict[str, object]:
    """What the page shows of a daemon: its slots, jobs and the load average."""
    try:
        load: tuple[float, ...] = os.getloadavg()
    except OSError:
        load = (-1.0, -1.0, -1.0)
    return {
        "dcc_max_kids": slots,
        "dcc_current_load": running,
        "dcc_load1": load[0],
        "dcc_load2": load[1],
        "dcc_load3": load[2],
        "ccfarm_version": __version__,
        "ccfarm_jobs_done": jobs_done,
        "ccfarm_draining": int(draining),
    }


def stats_handler(
    figures: Callable[[], dict[str, object]], allowed: Callable[[str], bool]
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
    """The stats port's connection callback."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            if not peer or not allowed(peer[0]):
                log.warning("stats request from %s denied by access list", peer and peer[0])
                return
            # the request itself says nothing we use; reading it first spares
            # the peer a reset for unread bytes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(4096), REQUEST_WAIT)
            writer.write(stats_page(figures()))
            await asyncio.wait_for(writer.drain(), REQUEST_WAIT * 10)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    return serve
