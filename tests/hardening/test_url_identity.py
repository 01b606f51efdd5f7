"""Only known tracking parameters are dropped from URLs; a source can name more of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import ingest
from newsflow.config import parse_registry
from newsflow.errors import ConfigError
from newsflow.urls import normalize_url
from tests.hardening.site import article_html, end_marker, query, registry
from tests.support.httpserver import FixtureServer


@pytest.mark.parametrize("query_string", ["cid=123", "src=home", "ref=42", "rss=1", "id=7",
                                          "page=2", "source=ap", "outputType=amp"])
def test_generic_parameters_identify_the_page(query_string: str) -> None:
    url = f"https://example.com/story.php?{query_string}"
    assert normalize_url(url) == url


def test_known_trackers_are_dropped() -> None:
    url = ("https://Example.com/a?cid=1&utm_source=rss&UTM_Medium=x&fbclid=f&gclid=g&dclid=d"
           "&msclkid=m&mc_cid=c&mc_eid=e&ipid=promo-link-block1&_ga=1.2&igshid=i&mtm_campaign=z")
    assert normalize_url(url) == "https://example.com/a?cid=1"
    assert normalize_url("https://example.com/a?cid=1&promo=top", drop={"promo"}) == \
        "https://example.com/a?cid=1"


def test_a_source_lists_its_own_tracking_params() -> None:
    toml = (b'[[sources]]\nname = "s"\npublisher = "P"\nkind = "original"\n'
            b'domains = ["s.example"]\ntracking_params = ["Promo", "from"]\n')
    reg = parse_registry(toml, "reg.toml")
    assert reg.sources[0].tracking_params == frozenset({"promo", "from"})
    for bad, why in ((b'"promo"', "must be a list of strings"),
                     (b'["a=b"]', "not a query parameter name")):
        with pytest.raises(ConfigError, match=why) as exc:
            parse_registry(toml.replace(b'["Promo", "from"]', bad), "reg.toml")
        assert "reg.toml: source 's': key 'tracking_params'" in str(exc.value)


@pytest.mark.usefixtures("prefect_api")
def test_pages_that_differ_only_in_cid_are_two_articles(http_server: FixtureServer,
                                                        tmp_path: Path) -> None:
    base = "/news/story.php?cid="
    for cid, i in (("123", 1), ("456", 2), ("789", 3)):
        http_server.static(base + cid, article_html(i))
    listed = [base + "123", base + "456", base + "456&utm_source=rss&fbclid=x",
              base + "789&promo=home"]
    items = "".join(f"<item><link>{http_server.url(p).replace('&', '&amp;')}</link></item>"
                    for p in listed)
    http_server.static("/feed/", f'<rss version="2.0"><channel>{items}</channel></rss>'.encode(),
                       content_type="application/rss+xml")
    reg = registry(tmp_path / "sources.toml", http_server, feeds=["/feed/"])
    reg.write_text(reg.read_text() + 'tracking_params = ["promo"]\n')
    db = str(tmp_path / "news.duckdb")
    stats = ingest(sources_file=str(reg), db=db, workers=1, run_dedupe=False)
    assert stats["new_articles"] == 3 and stats["failed"] == 0
    rows = dict(query(db, "SELECT url, text FROM article_records"))
    for cid, i in (("123", 1), ("456", 2), ("789", 3)):
        assert end_marker(i) in rows[http_server.url(base + cid)]
