"""ccfarmd --stats: distccd's page layout, with ccfarmd's own figures."""

from __future__ import annotations

from ccfarm import __version__
from ccfarm.daemon.stats import daemon_figures, stats_page


def test_the_page_is_distccds_layout() -> None:
    page = stats_page({"dcc_max_kids": 4, "dcc_load1": 0.5, "ccfarm_x": "y"}).decode()
    head, _, body = page.partition("\r\n\r\n")
    assert head.splitlines() == [
        "HTTP/1.0 200 OK", "Content-Type: text/plain", "Connection: close"
    ]  # fmt: skip
    assert body.splitlines() == [
        "argv ccfarmd", "<distccstats>", "dcc_max_kids 4", "dcc_load1 0.50", "ccfarm_x y",
        "</distccstats>",
    ]  # fmt: skip


def test_a_daemons_figures() -> None:
    figures = daemon_figures(slots=4, running=3, jobs_done=17, draining=True)
    assert figures["dcc_max_kids"] == 4 and figures["dcc_current_load"] == 3
    assert figures["ccfarm_jobs_done"] == 17 and figures["ccfarm_draining"] == 1
    assert figures["ccfarm_version"] == __version__
    assert all(isinstance(figures[f"dcc_load{i}"], float) for i in (1, 2, 3))
