"""Fixture news sites on a FixtureServer: a feed, a sitemap, a listing page and real pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.conftest import PAGES, recorded_pages
from tests.support.httpserver import FixtureServer

GOOD = recorded_pages()[:4]


def rss(items: list[str]) -> bytes:
    """A WordPress-like RSS 2.0 feed of item links."""
    body = "".join(f"<item><title>t{i}</title><link>{u}</link><guid>{u}</guid></item>"
                   for i, u in enumerate(items))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Fixture</title><link>http://x/</link>{body}</channel></rss>").encode()


def article_paths() -> list[str]:
    return [f"/news/{Path(p.file).name.removesuffix('.html.gz')}-story/" for p in GOOD]


def serve_good_site(server: FixtureServer, *, etag: str | None = None) -> list[str]:
    """Serve the recorded pages and a feed listing them; returns the article URLs."""
    paths = article_paths()
    for path, page in zip(paths, GOOD, strict=True):
        server.static(path, page.html(), etag=etag and f'"{path}{etag}"')
    urls = [server.url(p) for p in paths]
    server.static("/feed/", rss(urls), content_type="application/rss+xml", etag=etag)
    return urls


def registry(path: Path, server: FixtureServer, *, feeds: Sequence[str] = (),
             sitemaps: Sequence[str] = (), pages: Sequence[str] = (), name: str = "fixture",
             allow_private: bool = True, min_delay: float = 0.0, max_concurrency: int = 4,
             fetch: str = "") -> Path:
    """A sources.toml for one fixture source on the server, with short timeouts."""

    def urls(paths: Sequence[str]) -> str:
        return ", ".join(f'"{server.url(p)}"' for p in paths)

    path.write_text(f"""
[fetch]
allow_private_networks = {str(allow_private).lower()}
connect_timeout = 2
read_timeout = 1
total_timeout = 3
retries = 2
backoff = 0.01
obey_robots = true
{fetch}

[[sources]]
name = "{name}"
publisher = "Fixture Media"
kind = "original"
domains = ["127.0.0.1"]
feeds = [{urls(feeds)}]
sitemaps = [{urls(sitemaps)}]
pages = [{urls(pages)}]
min_delay = {min_delay}
max_concurrency = {max_concurrency}
""")
    return path


def sources_toml(path: Path, server: FixtureServer, *, feeds: list[str], name: str = "fixture"
                 ) -> Path:
    """A registry for the fixture site: loopback allowed, no politeness delay, short timeouts."""
    return registry(path, server, feeds=feeds, name=name)


__all__ = ["PAGES", "GOOD", "rss", "serve_good_site", "sources_toml", "registry", "article_paths"]
