"""filter_candidates: normalize, keep the source's own hosts, dedupe, drop known URLs."""

from __future__ import annotations

from newsflow.types import Registry, Source
from tasks.discover import filter_candidates
from tasks.discover_feeds import parse_feed

from .conftest import read

STORY = "https://www.kxan.com/news/local/austin/a-story-about-the-budget-vote/"


def test_normalizes_and_dedupes_in_order(kxan: Source) -> None:
    urls = [
        STORY + "?utm_source=rss&utm_medium=rss",
        "HTTPS://WWW.KXAN.COM:443/news/local/austin/a-story-about-the-budget-vote/#respond",
        "https://www.kxan.com/news/texas/another-story-about-the-legislature/?fbclid=abc",
        STORY,
    ]
    got = filter_candidates(urls, kxan, found_via="https://www.kxan.com/feed/")
    assert [c.url for c in got] == [
        STORY, "https://www.kxan.com/news/texas/another-story-about-the-legislature/"]
    assert all(c.source == "kxan" and c.found_via == "https://www.kxan.com/feed/" for c in got)


def test_only_the_sources_hosts(kxan: Source) -> None:
    urls = [
        "https://thehill.com/homenews/4200001-senate-votes/",
        "https://kxan.com/news/no-www-is-fine-too/",
        "https://video.kxan.com/news/a-subdomain-is-fine/",
        "https://notkxan.com/news/lookalike-host/",
        "https://kxan.com.evil.example/news/suffix-trick/",
        "ftp://www.kxan.com/news/not-http/",
        "https://www.kxan.com:99999/bad-port/",
        "not a url at all",
    ]
    assert [c.url for c in filter_candidates(urls, kxan)] == [
        "https://kxan.com/news/no-www-is-fine-too/",
        "https://video.kxan.com/news/a-subdomain-is-fine/",
    ]


def test_known_urls_are_dropped_by_normalized_form(kxan: Source) -> None:
    stored = {STORY}
    asked: list[str] = []

    def known(url: str) -> bool:
        asked.append(url)
        return url in stored

    urls = [STORY + "?utm_campaign=x", "https://www.kxan.com/news/a-new-story-nobody-has-seen/"]
    got = filter_candidates(urls, kxan, known=known)
    assert [c.url for c in got] == ["https://www.kxan.com/news/a-new-story-nobody-has-seen/"]
    assert asked == [STORY, "https://www.kxan.com/news/a-new-story-nobody-has-seen/"]


def test_seen_set_dedupes_across_batches(kxan: Source) -> None:
    seen: set[str] = set()
    first = filter_candidates([STORY], kxan, found_via="feed", seen=seen)
    second = filter_candidates([STORY + "#x", "https://www.kxan.com/news/b-c-d-e/"], kxan,
                               found_via="sitemap", seen=seen)
    assert [c.found_via for c in first] == ["feed"]
    assert [c.url for c in second] == ["https://www.kxan.com/news/b-c-d-e/"]


def test_registry_leaves_a_more_specific_host_to_its_owner() -> None:
    network = Source(name="network", publisher="P", kind="original", domains=("example.com",))
    local = Source(name="local", publisher="P", kind="syndicator",
                   domains=("local.example.com",))
    registry = Registry(path="test", sources=(network, local))
    urls = ["https://example.com/news/a-b-c-d/", "https://local.example.com/news/e-f-g-h/"]
    assert [c.url for c in filter_candidates(urls, network)] == urls
    assert [c.url for c in filter_candidates(urls, network, registry)] == [urls[0]]
    assert [c.url for c in filter_candidates(urls, local, registry)] == [urls[1]]


def test_feed_to_candidates(kxan: Source) -> None:
    found = parse_feed(read("kxan_feed.xml"), "https://www.kxan.com/feed/")
    got = filter_candidates(found, kxan, found_via="https://www.kxan.com/feed/")
    assert len(got) == 4  # the thehill.com item belongs to another source
    assert all("utm_" not in c.url for c in got)
