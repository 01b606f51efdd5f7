"""The bench harness's helpers (speed itself is never asserted here: bench/run.py measures it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest
import requests

from bench.corpus import CorpusPage, replicated, vary_html, vary_url
from bench.incremental import serve_site
from bench.procs import Measured, check, run_measured
from bench.run import markdown
from bench.scaling import articles
from bench.throughput import bare_extract, bare_loop, cli_phases, in_process
from newsflow.urls import normalize_url
from tasks import trafilatura_fast
from tasks.warc import iter_warc, write_warc
from tests.conftest import recorded_pages
from tests.support.httpserver import FixtureServer

HTML = (b"<html><head><title>T</title></head><body><article><p>First paragraph here.</p>"
        b"<p class='x'>Second one.</p><p>Third.</p><p>Fourth stays.</p></article></body></html>")


def test_copy_zero_is_the_original_and_copies_differ() -> None:
    assert vary_url("https://a.example/x/?id=3", 0) == "https://a.example/x/?id=3"
    assert vary_html(HTML, 0) == HTML
    one, two = vary_html(HTML, 1), vary_html(HTML, 2)
    assert len({HTML, one, two}) == 3
    assert one.count(b"Update 1:") == 3  # the first three paragraphs only
    assert b"<p>Fourth stays.</p>" in one
    assert vary_url("https://a.example/x/?id=3#c", 2) == "https://a.example/x/copy-2?id=3"


def test_replicated_urls_stay_distinct_after_normalization(tmp_path: Path) -> None:
    pages = [CorpusPage(url=f"https://s{i}.example/story-{i}#top", html=HTML) for i in range(3)]
    recs = list(replicated(pages, 10))
    assert len(recs) == 10
    assert len({normalize_url(r.url) for r in recs}) == 10
    write_warc(tmp_path / "r.warc.gz", recs)
    assert [r.body for r in iter_warc(tmp_path / "r.warc.gz")] == [r.body for r in recs]


def test_run_measured_times_lines_and_sees_child_memory() -> None:
    code = ("import sys, time\nprint('start', flush=True)\nblob = bytearray(80 * 2**20)\n"
            "time.sleep(0.5)\nprint('done', flush=True)")
    m = check(run_measured([sys.executable, "-c", code], memory=True, poll=0.05), "child")
    assert [line for _, line in m.lines] == ["start", "done"]
    start, done = m.first("start"), m.first("done")
    assert start is not None and done is not None and done - start >= 0.4
    assert m.peak_rss_mb >= 70
    # Timing runs do not sample (sampling costs CPU): no memory figures, no timeline.
    quiet = check(run_measured([sys.executable, "-c", code]), "child")
    assert [line for _, line in quiet.lines] == ["start", "done"]
    assert quiet.peak_rss_mb == 0 and not quiet.timeline
    with pytest.raises(RuntimeError, match="exited 3"):
        check(run_measured([sys.executable, "-c", "raise SystemExit(3)"]), "failing child")


def test_cli_phases_split_wall_time_at_the_log_lines() -> None:
    m = Measured(returncode=0, wall=20.0, peak_rss_mb=1.0, lines=[
        (1.0, "Starting temporary server"),
        (8.0, "Flow run 'x' - Beginning flow run 'x' for flow 'import-warc'"),
        (15.0, "Flow run 'x' - imported a.warc.gz: 3 new articles"),
        (16.0, "Flow run 'y' - Beginning subflow run 'y' for flow 'dedupe'"),
        (18.0, "Flow run 'y' - Finished in state Completed()"),
        (18.5, "Flow run 'x' - Finished in state Completed()"), (19.0, "Stopping temporary server")])
    assert cli_phases(m) == {"startup_s": 8.0, "import_s": 7.0, "after_import_s": 3.5,
                             "run_s": 10.5, "exit_s": 1.5}


def test_cli_phases_without_a_finish_line_run_to_the_end() -> None:
    m = Measured(returncode=0, wall=20.0, peak_rss_mb=1.0, lines=[
        (8.0, "Flow run 'x' - Beginning flow run 'x' for flow 'import-warc'"),
        (15.0, "Flow run 'x' - imported a.warc.gz: 3 new articles")])
    assert cli_phases(m) == {"startup_s": 8.0, "import_s": 7.0, "after_import_s": 5.0,
                             "run_s": 12.0, "exit_s": 0.0}


def test_bare_loop_extracts_real_pages_in_worker_processes() -> None:
    bodies = [p.html() for p in recorded_pages()[:4]]
    assert all(bare_extract(b) > 200 for b in bodies)
    trafilatura_fast.uninstall()  # tests/conftest.py installs it for the session
    try:
        assert bare_loop(bodies, bare_extract, workers=2) > 0
    finally:
        trafilatura_fast.install()


def test_bare_loop_refuses_a_sped_up_trafilatura() -> None:
    # The baselines are plain trafilatura: newsflow's speed-ups must not reach them.
    trafilatura_fast.install()
    with pytest.raises(RuntimeError, match="as shipped"):
        bare_loop([b"<html></html>"], bare_extract, workers=1)


def test_synthetic_articles_are_deterministic_with_copies() -> None:
    first = list(articles(300, seed=7))
    again = list(articles(300, seed=7))
    assert [a.text for a in first] == [a.text for a in again]
    assert len({a.article_id for a in first}) == 300
    copies = [a for a in first if a.text.endswith("originally published elsewhere.")]
    assert 30 <= len(copies) <= 90  # about one in five
    assert {a.article_id for a in articles(5, seed=7, offset=300)}.isdisjoint(a.article_id for a in first)


def test_incremental_site_answers_conditional_gets_with_304() -> None:
    pages = [CorpusPage(url="https://x.example/a", html=HTML)]
    with FixtureServer() as server:
        urls = serve_site(server, pages, 3)
        first = requests.get(urls[2], timeout=5)
        assert first.status_code == 200 and b"Update 2:" in first.content
        again = requests.get(urls[2], headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
        assert again.status_code == 304
        feed = requests.get(server.url("/feed/"), timeout=5)
        assert all(u in feed.text for u in urls)


def test_markdown_table_has_a_row_per_figure() -> None:
    meta = {"date": "d", "cpus": 2, "machine": "m", "load_before": "1", "load_after": "2", "seconds": 3.0}
    text = markdown([("a", "1.0", ">= 1", True), ("b", "2", "context", None), ("c", "3", "<= 1", False)],
                    meta)
    assert "| a | 1.0 | >= 1 | yes |" in text and "| c | 3 | <= 1 | **no** |" in text
    assert "| b | 2 | context |  |" in text


def test_cpu_figures_time_both_extraction_paths_and_leave_the_fast_path_on(tmp_path: Path) -> None:
    from bench.throughput import run_cpu

    demo = Path(__file__).resolve().parents[2] / "newsflow" / "data" / "demo.warc.gz"
    got = run_cpu(str(demo), str(tmp_path / "unused.duckdb"), n=6, rounds=1)
    assert set(got) == {"bare_extract_cpu_ms", "extract_page_stock_cpu_ms", "extract_page_cpu_ms"}
    assert all(v > 0 for v in got.values())
    assert trafilatura_fast.installed()


def test_the_plain_import_runs_dedupe_too_and_splits_its_time(tmp_path: Path) -> None:
    # Prefect's share compares the flows with this: the same import and dedupe, no Prefect.
    demo = Path(__file__).resolve().parents[2] / "newsflow" / "data" / "demo.warc.gz"
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # any API call would fail
    got = in_process("plain", demo, tmp_path / "plain.duckdb", env)
    assert 0 < got["import_s"] < got["seconds"]
    with duckdb.connect(str(tmp_path / "plain.duckdb"), read_only=True) as con:
        stories, copies = con.execute("SELECT count(*), sum(member_count - 1) FROM stories").fetchone()
    assert stories > 0 and copies > 0  # the demo's aggregator copies merged with their originals
