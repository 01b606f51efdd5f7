"""The ingest flow against a real HTTP server on 127.0.0.1: bad input is recorded, the run goes on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.ingest import ingest
from storage.db import reader
from storage.reads import table_counts
from tests.support import httpserver as hs
from tests.support.httpserver import FixtureServer
from tests.support.sites import rss, serve_good_site, sources_toml

pytestmark = pytest.mark.usefixtures("prefect_api")

LATIN1 = ("<html><head>{meta}<title>Caf\xe9</title></head><body><article><h1>Caf\xe9 news</h1>"
          + "<p>Le caf\xe9 de la gare a rouvert ses portes apr\xe8s des mois de travaux, \xe0 la "
            "grande joie des habitu\xe9s qui se pressaient d\xe9j\xe0 devant l'entr\xe9e.</p>" * 4
          + "</article></body></html>")
BAD = {
    "/bad/pdf/": hs.static(b"%PDF-1.7\n%binary\n", content_type="application/pdf"),
    "/bad/empty/": hs.static(b""),
    "/bad/latin1-declared/": hs.static(LATIN1.format(meta="").encode("latin-1"),
                                       content_type="text/html; charset=iso-8859-1"),
    "/bad/latin1-undeclared/": hs.static(LATIN1.format(meta="").encode("latin-1"),
                                         content_type="text/html"),
    "/bad/missing/": hs.status_only(404, b"gone"),
    "/bad/flaky/": hs.status_sequence([500, 200], body=LATIN1.format(
        meta='<meta charset="utf-8">').encode("utf-8")),
    "/bad/slow/": hs.delayed(5, hs.static(b"<html>late</html>")),
}


@dataclass
class Run:
    server: FixtureServer
    db: str
    stats: dict[str, object]

    def failure(self, path: str) -> tuple[str, int | None, int]:
        with reader(self.db) as con:
            row = con.execute("SELECT reason, last_status, attempts FROM failures WHERE url = ?",
                              [self.server.url(path)]).fetchone()
        assert row is not None, f"no failure recorded for {path}"
        return row[0], row[1], row[2]

    def text(self, path: str) -> str:
        with reader(self.db) as con:
            row = con.execute("SELECT text FROM articles WHERE url = ?",
                              [self.server.url(path)]).fetchone()
        assert row is not None, f"no article for {path}"
        return str(row[0])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("ingest")
    with FixtureServer() as server:
        good = serve_good_site(server)
        for path, behaviour in BAD.items():
            server.route(path, behaviour)
        server.static("/feed/", rss(good + [server.url(p) for p in BAD]),
                      content_type="application/rss+xml")
        server.static("/notxml-feed/", b"<html><body>This is not a feed</body></html>")
        reg = sources_toml(tmp / "sources.toml", server, feeds=["/feed/", "/notxml-feed/"])
        db = str(tmp / "news.duckdb")
        stats = ingest(sources_file=str(reg), db=db, workers=1, run_dedupe=False)
        yield Run(server, db, stats)


def test_good_pages_become_articles(run: Run) -> None:
    with reader(run.db) as con:
        n = con.execute("SELECT count(*) FROM articles WHERE url LIKE '%/news/%'").fetchone()
    assert n == (4,)


def test_feed_that_is_not_xml_is_recorded(run: Run) -> None:
    reason, _, _ = run.failure("/notxml-feed/")
    assert reason in {"not_xml", "not_a_feed"}


def test_pdf_is_recorded_not_html(run: Run) -> None:
    assert run.failure("/bad/pdf/")[0] == "not_html"


def test_empty_body_is_recorded(run: Run) -> None:
    assert run.failure("/bad/empty/")[0] == "empty_body"


def test_404_is_recorded_and_not_retried(run: Run) -> None:
    assert run.failure("/bad/missing/") == ("http_404", 404, 1)
    assert run.server.hits("/bad/missing/") == 1


def test_500_then_success_is_retried_into_an_article(run: Run) -> None:
    assert "caf\xe9 de la gare" in run.text("/bad/flaky/")
    assert run.server.hits("/bad/flaky/") == 2


def test_read_timeout_is_recorded_as_transient(run: Run) -> None:
    reason, _, attempts = run.failure("/bad/slow/")
    assert reason in {"read_timeout", "deadline_exceeded"}
    with reader(run.db) as con:
        row = con.execute("SELECT transient, next_retry_at IS NOT NULL FROM failures WHERE url = ?",
                          [run.server.url("/bad/slow/")]).fetchone()
    assert row == (True, True) and attempts >= 1


@pytest.mark.parametrize("path", ["/bad/latin1-declared/", "/bad/latin1-undeclared/"])
def test_non_utf8_pages_are_decoded(run: Run, path: str) -> None:
    text = run.text(path)
    assert "caf\xe9 de la gare" in text and "\ufffd" not in text


def test_run_stats_and_run_row(run: Run) -> None:
    assert run.stats["new_articles"] == 7
    with reader(run.db) as con:
        status = con.execute("SELECT status FROM runs WHERE flow = 'ingest'").fetchall()
    assert status == [("completed",)]


def test_second_run_fetches_nothing_new(run: Run, tmp_path: Path) -> None:
    with reader(run.db) as con:
        before = table_counts(con)
    hits = len(run.server.requests)
    reg = str(Path(run.db).parent / "sources.toml")
    stats = ingest(sources_file=reg, db=run.db, workers=1, run_dedupe=False)
    assert stats["new_articles"] == 0
    with reader(run.db) as con:
        after = table_counts(con)
    # Only the feeds (and the still-due transient failure) are requested again.
    page_requests = [r for r in run.server.requests[hits:] if r.path.startswith("/news/")]
    assert page_requests == []
    assert after["article_records"] == before["article_records"]
