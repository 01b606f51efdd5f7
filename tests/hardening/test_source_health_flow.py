"""A source whose feed keeps failing on hostile input (an XML bomb) is flagged in source_health
after 3 runs, while a healthy source on the same host is not (tests/orchestration covers HTTP
errors and recovery)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import ingest
from tests.conftest import DATA
from tests.hardening.site import article_html, query
from tests.support.httpserver import FixtureServer

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_feed_failing_three_runs_is_flagged(http_server: FixtureServer, tmp_path: Path) -> None:
    http_server.static("/bomb-feed/", (DATA / "discover" / "billion_laughs.xml").read_bytes(),
                       content_type="application/rss+xml")
    http_server.static("/news/ok-story/", article_html(1))
    # The healthy source reaches the same server as "localhost" (domains are unique per source).
    local = http_server.base_url.replace("127.0.0.1", "localhost")
    http_server.static("/feed/", f'<rss version="2.0"><channel><item><link>{local}/news/ok-story/'
                                 f"</link></item></channel></rss>".encode(),
                       content_type="application/rss+xml")
    reg = tmp_path / "sources.toml"
    common = 'publisher = "P"\nkind = "original"\nmin_delay = 0\n'
    reg.write_text(f"""
[fetch]
allow_private_networks = true
read_timeout = 1
total_timeout = 3
retries = 0

[[sources]]
name = "broken"
domains = ["127.0.0.1"]
feeds = ["{http_server.url('/bomb-feed/')}"]
{common}
[[sources]]
name = "healthy"
domains = ["localhost"]
feeds = ["{local}/feed/"]
{common}""")
    db = str(tmp_path / "n.duckdb")
    flags = []
    for _ in range(3):
        ingest(sources_file=str(reg), db=db, workers=1, run_dedupe=False)
        flags.append(query(db, "SELECT source, consecutive_failing_runs, flagged, "
                               "last_failure_reason FROM source_health ORDER BY source"))
    assert flags[0] == [("broken", 1, False, "xml_bomb"), ("healthy", 0, False, None)]
    assert flags[2] == [("broken", 3, True, "xml_bomb"), ("healthy", 0, False, None)]
