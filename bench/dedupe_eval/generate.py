"""Generate the labelled dedupe evaluation set: real originals, synthetic copies, traps, labels."""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Run as a script (python bench/dedupe_eval/generate.py), the repo root is not on sys.path.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import trafilatura  # noqa: E402

from bench.common import corpus_dir, fundus_truth, read_gz, read_manifest, shared_dir  # noqa: E402
from bench.dedupe_eval.templates import BlockTag, DateMode, PageView, Site, render, render_amp  # noqa: E402
from newsflow.urls import host_of, normalize_url  # noqa: E402
from tasks.warc import WarcResponse, write_warc  # noqa: E402

FOLDERS = ("article-extraction-benchmark", "fundus", "newspaper4k-tests", "trafilatura-eval")
BOILERPLATE_LINES = ("ADVERTISEMENT", "DMCA compliant image", "Leave a Comment")
NEXSTAR_LINE = ("© {year} Nexstar Media Inc. All rights reserved. This material may not be "
                "published, broadcast, rewritten, or redistributed.")

SYNDICATORS = (
    Site(host="kvtn4.com", name="KVTN 4 News", template="nxs-station-a", kind="syndicator",
         local_titles=("County fair returns with new rides this weekend",
                       "Police: crash closes two lanes on Interstate 40",
                       "High school robotics team heads to state finals")),
    Site(host="wmrt13.com", name="WMRT 13", template="nxs-station-b", kind="syndicator",
         local_titles=("Storms possible Tuesday evening across the valley",
                       "City council approves new downtown parking plan")),
    Site(host="kqpr8news.com", name="KQPR 8 News Now", template="nxs-station-c",
         kind="syndicator",
         local_titles=("Animal shelter waives adoption fees through Sunday",
                       "Road work to begin on Main Street bridge",
                       "Local bakery celebrates 50 years in business")),
)
AGGREGATORS = (
    Site(host="vigourdailytimes.com", name="Vigour Daily Times", template="agg-wp-news",
         kind="aggregator", email="[email protected]"),
    Site(host="globalnewswire24.net", name="Global Newswire 24", template="agg-magazine",
         kind="aggregator", email="contact@globalnewswire24.net"),
    Site(host="headlinehubdaily.com", name="Headline Hub Daily", template="agg-blogger",
         kind="aggregator", email="[email protected]"),
    Site(host="trendingworldpost.com", name="Trending World Post", template="agg-wp-news",
         kind="aggregator", email="admin@trendingworldpost.com"),
    Site(host="newsfeedmirror.xyz", name="NewsFeed Mirror", template="agg-magazine",
         kind="aggregator", email="[email protected]"),
)

# Independent newsrooms of the reworded set: each tells a same-event story its own way.
NEWSROOMS = (
    Site(host="dailyledgerpost.com", name="The Daily Ledger", template="news-site",
         kind="original"),
    Site(host="metrochronicle.net", name="Metro Chronicle", template="news-site",
         kind="original"),
    Site(host="northstarherald.com", name="Northstar Herald", template="news-site",
         kind="original"),
)


def short_disclaimer(site: Site) -> str:
    """The seed's 'Denial of responsibility!' block, with the site's own name."""
    return (f"Denial of responsibility! {site.name} is an automatic aggregator of Global media. "
            "In each content, the hyperlink to the primary source is specified. All trademarks "
            "belong to their rightful owners, and all materials to their authors. For any "
            f"complaint, please reach us at – {site.email}. We will take necessary action within "
            "24 hours.")


def long_disclaimer(site: Site) -> list[str]:
    """A multi-paragraph disclaimer longer than any short story it is appended to (~230 words)."""
    return [
        short_disclaimer(site),
        (f"{site.name} is an automatic aggregator of the all world’s media. The content on this "
         "website is collected automatically from publicly available sources and is provided "
         "for general information purposes only. We do not claim ownership of any of the news "
         "articles, images or videos displayed on this website. If you are the owner of the "
         "content and do not want us to publish your materials, please contact us by email and "
         "the content will be deleted within 24 hours."),
        ("The views and opinions expressed in the articles are those of the original authors and "
         f"do not necessarily reflect the official policy or position of {site.name}. While we "
         "strive to keep the information up to date and correct, we make no representations or "
         "warranties of any kind, express or implied, about the completeness, accuracy, "
         "reliability or availability of the information. Any reliance you place on such "
         "information is therefore strictly at your own risk. In no event will we be liable for "
         "any loss or damage arising from the use of this website."),
    ]


def sentences(paragraphs: list[str]) -> list[str]:
    """Split disclaimer paragraphs into the sentences the residue check looks for."""
    out: list[str] = []
    for p in paragraphs:
        for s in re.split(r"(?<=[.!?])\s+", p):
            s = s.strip()
            if len(s.split()) >= 3 and s not in out:
                out.append(s)
    return out


# --- corpus ------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class CorpusPage:
    """A real page of the shared corpus with its best available body text and metadata."""

    url: str
    folder: str
    publisher: str
    nexstar: bool
    html: bytes
    paragraphs: list[str]
    truth_source: str  # ground truth | trafilatura
    title: str
    author: str | None
    date: datetime | None  # from the page's own metadata or the ground truth
    quality: tuple[float, float]  # (recall, precision) of trafilatura against the body text

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    """Word n-grams: the overlap measure used for filtering and for the verification pass."""
    w = _words(text)
    return {tuple(w[i:i + n]) for i in range(max(0, len(w) - n + 1))}


def containment(part: str, whole: str) -> float:
    """Share of part's word 3-grams found in whole (1.0 for an empty part)."""
    a = shingles(part)
    return len(a & shingles(whole)) / len(a) if a else 1.0


def extract(html: bytes, url: str) -> dict[str, Any]:
    """trafilatura's text and metadata of a page as a dict (empty when it finds nothing)."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True)
    if doc is None:
        return {}
    return doc if isinstance(doc, dict) else doc.as_dict()


def _split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n+", text) if p.strip()]


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


def _truth(folder: str, row: dict[str, str], bench: dict[str, dict[str, str]]
           ) -> tuple[list[str] | None, str | None, str | None, datetime | None]:
    """Ground-truth (paragraphs, title, author, date) of a manifest row; None where absent."""
    name = Path(row["file"]).name.removesuffix(".html.gz")
    if folder == "article-extraction-benchmark":
        body = bench.get(name, {}).get("articleBody") or ""
        return _split_paragraphs(body) or None, None, None, None
    if folder == "fundus":
        ft = fundus_truth(row)
        author = ", ".join(ft.authors) if ft.authors else None
        return list(ft.paragraphs) or None, ft.title, author, _parse_date(ft.published)
    if folder == "newspaper4k-tests":
        root = corpus_dir() / folder
        txt = root / "txt" / f"{name}.txt"
        meta_file = root / "metadata" / f"{name}.json"
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        authors = meta.get("authors") or []
        paragraphs = _split_paragraphs(txt.read_text(encoding="utf-8")) if txt.is_file() else []
        return (paragraphs or None, meta.get("title"),
                ", ".join(authors) if isinstance(authors, list) and authors else None, None)
    return None, None, None, None


def clean_title(title: str | None) -> str | None:
    """An HTML title without its site-name part ("Site - Headline | Section" keeps Headline)."""
    if not title:
        return None
    parts = [p.strip() for p in re.split(r"\s+[|–—-]\s+", title) if p.strip()]
    return max(parts, key=len) if parts else title


_META_DATE = re.compile(rb"<meta[^>]+article:published_time[^>]*>", re.I)


def _meta_published(html: bytes) -> datetime | None:
    tag = _META_DATE.search(html)
    if not tag:
        return None
    m = re.search(rb"content\s*=\s*[\"']([^\"']+)", tag.group(0), re.I)
    return _parse_date(m.group(1).decode("ascii", "replace")) if m else None


def load_page(folder: str, row: dict[str, str], bench: dict[str, dict[str, str]]
              ) -> CorpusPage | None:
    """Read one manifest row; None when it has no URL or no usable text."""
    url = row["url"].strip()
    if not url:
        return None
    html = read_gz(corpus_dir() / row["file"])
    doc = extract(html, url)
    extracted = doc.get("text") or ""
    paragraphs, title, author, date = _truth(folder, row, bench)
    source = "ground truth"
    if paragraphs is None:
        paragraphs, source = _split_paragraphs(extracted), "trafilatura"
    if not paragraphs:
        return None
    body = "\n".join(paragraphs)
    a, b = shingles(body), shingles(extracted)
    quality = (len(a & b) / max(1, len(a)), len(a & b) / max(1, len(b)))
    meta_date = _meta_published(html)
    ext_date = _parse_date(doc.get("date"))
    return CorpusPage(
        url=url, folder=folder, publisher=row["publisher"] or host_of(url),
        nexstar=row.get("nexstar", "no").strip() == "yes", html=html, paragraphs=paragraphs,
        truth_source=source,
        title=(title or clean_title(doc.get("title"))
               or " ".join(body.split()[:10])).strip(),
        author=author or doc.get("author"),
        date=meta_date or date or ext_date,
        quality=quality,
    )


def fit_as_original(p: CorpusPage) -> bool:
    """Long enough to copy and drop a paragraph from, and extractable well enough to be matched."""
    return (150 <= p.words <= 3000 and len(p.paragraphs) >= 3
            and p.quality[0] >= 0.8 and p.quality[1] >= 0.6)


_ENGLISH = frozenset({"the", "a", "an", "of", "to", "and", "in", "is", "for", "on", "that", "with",
                      "was", "as", "by", "at", "from", "it", "has", "are"})


def english(text: str) -> bool:
    """Crude but enough to keep the short briefs in English: common function words are frequent."""
    words = _words(text)
    return bool(words) and sum(w in _ENGLISH for w in words) / len(words) > 0.12


def lead(paragraphs: list[str]) -> str:
    """The first real paragraph (datelines and bylines like 'Staff Reports' are skipped)."""
    return next((p for p in paragraphs if len(p.split()) >= 15), paragraphs[0])


def brief_text(p: CorpusPage) -> list[str] | None:
    """60-150 words from the start of a ground-truth body, whole sentences; None if impossible."""
    if p.truth_source != "ground truth" or not english(" ".join(p.paragraphs[:3])):
        return None
    out: list[str] = []
    count = 0
    for para in p.paragraphs:
        n = len(para.split())
        if count + n <= 150:
            out.append(para)
            count += n
        else:
            kept = []
            for s in re.split(r"(?<=[.!?])\s+", para):
                if count + len(s.split()) > 150:
                    break
                kept.append(s)
                count += len(s.split())
            if kept:
                out.append(" ".join(kept))
            break
        if count >= 90:
            break
    return out if 60 <= count <= 150 else None


# --- planning ----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Story:
    """A chosen original and what its copies are built from."""

    key: str
    page: CorpusPage
    published: datetime
    fetched_at: datetime
    html: bytes  # the recorded HTML, with an article:published_time meta added when missing


@dataclass(kw_only=True)
class GenPage:
    """One WARC record of the set with its label."""

    url: str
    body: bytes
    fetched_at: datetime
    story: str
    is_original: bool
    kind: str
    template: str
    has_disclaimer: bool
    source_host: str
    content_type: str = "text/html; charset=utf-8"
    expected: list[str] = field(default_factory=list)  # body paragraphs extraction must keep
    info: dict[str, object] = field(default_factory=dict)

    def label(self) -> dict[str, object]:
        return {"url": self.url, "normalized_url": normalize_url(self.url), "story": self.story,
                "is_original": self.is_original, "kind": self.kind, "template": self.template,
                "has_disclaimer": self.has_disclaimer, "host": self.source_host,
                "fetched_at": self.fetched_at.isoformat(), **self.info}


def slugify(text: str, limit: int = 70) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "story"


def tweak_title(title: str, rng: random.Random) -> str:
    """An aggregator's rewrite of a headline: prefix, suffix, case or wording changes."""
    t = title
    choice = rng.randrange(6)
    if choice == 0:
        t = rng.choice(["BREAKING: ", "Report: ", "JUST IN: ", "Watch: "]) + t
    elif choice == 1:
        t = t.rstrip(".") + rng.choice([" – Here’s What We Know", " (Update)",
                                        " | Latest News", " - Full Story"])
    elif choice == 2:
        t = " ".join(w[:1].upper() + w[1:] for w in t.split())
    elif choice == 3:
        t = re.sub(r"\bsays\b", "said", t) if re.search(r"\bsays\b", t) else "Latest: " + t
    elif choice == 4:
        t = t.removeprefix("The ").removeprefix("A ")
        t = t[:1].upper() + t[1:] + rng.choice(["", " amid growing concern"])
    else:
        t = t.replace(" and ", " & ").replace("U.S.", "US")
        t = t if t != title else t + " – Report"
    return t


def with_meta_date(html: bytes, when: datetime) -> bytes:
    """Add article:published_time to a recorded page that lacks it, leaving its bytes otherwise."""
    if _META_DATE.search(html):
        return html
    tag = f'<meta property="article:published_time" content="{when.isoformat()}">\n'.encode()
    m = re.search(rb"</head\s*>", html, re.I)
    if m:
        return html[:m.start()] + tag + html[m.start():]
    m = re.search(rb"<head[^>]*>", html, re.I)
    if m:
        return html[:m.end()] + tag + html[m.end():]
    return tag + html


def amp_url(url: str) -> str:
    """The AMP variant of an article URL: WordPress-style /amp/ suffix or an /amp path prefix."""
    parts = urlsplit(url)
    path = parts.path + "amp/" if parts.path.endswith("/") else "/amp" + parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def utm_url(url: str, rng: random.Random) -> str:
    source = rng.choice(["twitter", "facebook", "newsletter", "flipboard"])
    q = f"utm_source={source}&utm_medium=social&utm_campaign=share_{rng.randrange(100, 999)}"
    parts = urlsplit(url)
    query = f"{parts.query}&{q}" if parts.query else q
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def minutes(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(minutes=rng.uniform(lo, hi))


class Generator:
    """Builds the whole set from a seed; all randomness comes from one random.Random."""

    def __init__(self, seed: int, originals: int, reworded: Path | None = None) -> None:
        self.seed = seed
        self.k = originals
        self.rng = random.Random(seed)
        # The reworded set (reworded-dev/*.json): its originals are kept out of the main set.
        self.reworded = ([json.loads(f.read_text(encoding="utf-8"))
                          for f in sorted(reworded.glob("*.json"))]
                         if reworded is not None and reworded.is_dir() else [])
        self.reworded_urls = {normalize_url(d["original_url"]) for d in self.reworded}
        self.rw_stories: list[Story] = []
        self.unlisted_originals: set[str] = set()
        aggs = list(AGGREGATORS)
        self.rng.shuffle(aggs)
        # One aggregator is deliberately missing from sources.toml: its pages are "unknown".
        self.unlisted = replace(aggs[0], listed=False)
        self.aggregators = [self.unlisted, *aggs[1:]]
        self.shorts_site = aggs[1]
        self.digest_site = aggs[2]
        self.pages: list[GenPage] = []
        self.stories: list[Story] = []
        self.disclaimer_paragraphs: list[str] = []
        self.url_counter = 1000 + self.rng.randrange(9000)

    # corpus selection

    def choose(self) -> tuple[list[CorpusPage], list[CorpusPage]]:
        """K originals (Nexstar pages first, then by seed) and a pool of brief sources."""
        bench = json.loads((corpus_dir() / FOLDERS[0] / "ground-truth.json").read_text("utf-8"))
        rows = [(f, r) for f in FOLDERS for r in read_manifest(f)]
        self.rng.shuffle(rows)
        rows.sort(key=lambda fr: fr[1].get("nexstar", "no").strip() != "yes")
        originals: list[CorpusPage] = []
        briefs: list[CorpusPage] = []
        seen: list[set[tuple[str, ...]]] = []
        urls: set[str] = set()
        for folder, row in rows:
            if len(originals) >= self.k and len(briefs) >= 14:
                break
            if normalize_url(row["url"].strip() or "-") in self.reworded_urls:
                continue
            page = load_page(folder, row, bench)
            if page is None or normalize_url(page.url) in urls:
                continue
            sh = shingles(" ".join(page.paragraphs[:6]))
            # The same article can sit in two datasets: keep only one of them.
            if any(len(sh & s) > 0.2 * max(1, len(sh)) for s in seen):
                continue
            if len(originals) < self.k and fit_as_original(page):
                originals.append(page)
            elif len(briefs) < 14 and brief_text(page) is not None:
                briefs.append(page)
            else:
                continue
            seen.append(sh)
            urls.add(normalize_url(page.url))
        return originals, briefs

    def next_id(self) -> int:
        self.url_counter += self.rng.randrange(3, 40)
        return self.url_counter

    def site_url(self, site: Site, title: str, when: datetime, *, dated: bool) -> str:
        """A URL in the site's own style; dated=False keeps any date out of the path."""
        slug = slugify(title)
        if site.kind == "syndicator":
            return f"https://www.{site.host}/news/national/{slug}/"
        if site.template == "agg-magazine":
            return f"https://{site.host}/news/{slug}-{self.next_id()}.html"
        if site.template == "agg-blogger" and dated:
            return f"https://www.{site.host}/{when:%Y/%m}/{slug[:50]}.html"
        if site.template == "agg-blogger":
            return f"https://www.{site.host}/p/{slug[:50]}.html"
        return f"https://{site.host}/{slug}/"

    # stories

    def add_originals(self, chosen: list[CorpusPage]) -> None:
        for i, page in enumerate(chosen):
            published = page.date or datetime(
                self.rng.randint(2019, 2024), self.rng.randint(1, 12), self.rng.randint(1, 28),
                self.rng.randint(5, 20), self.rng.randrange(60), tzinfo=UTC)
            if published.hour == 0 and published.minute == 0:  # a bare date: give it a time
                published += timedelta(hours=self.rng.randint(6, 18),
                                       minutes=self.rng.randrange(60))
            story = Story(key=f"story-{i + 1:03d}", page=page, published=published,
                          fetched_at=published + minutes(self.rng, 30, 36 * 60),
                          html=with_meta_date(page.html, published))
            self.stories.append(story)

    def related_for(self, story: Story, site: Site, n: int) -> list[tuple[str, str]]:
        others = [s for s in self.stories if s is not story]
        picks = self.rng.sample(others, min(n, len(others)))
        return [(s.page.title, self.site_url(site, s.page.title, s.published, dated=True))
                for s in picks]

    def plan_copies(self) -> None:
        """Copies of every story, the URL variants and the early-fetched copies (trap d)."""
        for story in self.stories:
            n = self.rng.choices([0, 1, 2, 3, 4], weights=[10, 25, 30, 20, 15])[0]
            synd_weight = 0.6 if story.page.nexstar else 0.3
            sites: list[Site] = []
            for _ in range(n):
                pool = SYNDICATORS if self.rng.random() < synd_weight else self.aggregators
                free = [s for s in pool if s not in sites]
                if free:
                    sites.append(self.rng.choice(free))
            early = self.rng.choice(sites) if sites and self.rng.random() < 0.25 else None
            if early is not None:
                # The crawler reached the original days after its copies (trap d).
                story.fetched_at = story.published + minutes(self.rng, 4 * 1440, 10 * 1440)
            for site in sites:
                self.pages.append(self.make_copy(story, site, early=site is early))
        for story in self.rng.sample(self.stories, min(4, len(self.stories))):
            self.pages.append(self.make_utm(story))
        for story in self.rng.sample(self.stories, min(4, len(self.stories))):
            self.pages.append(self.make_amp(story))

    def copy_times(self, story: Story, *, early: bool, lo: float, hi: float
                   ) -> tuple[datetime, datetime]:
        """(published, fetched_at) of a copy; early copies are fetched before the original."""
        if early:
            published = story.published + minutes(self.rng, 30, 24 * 60)
            return published, published + minutes(self.rng, 5, 6 * 60)
        published = story.published + minutes(self.rng, lo, hi)
        return published, max(published, story.fetched_at) + minutes(self.rng, 10, 2 * 1440)

    def make_copy(self, story: Story, site: Site, *, early: bool) -> GenPage:
        if site.kind == "syndicator":
            return self.make_syndicated(story, site, early=early)
        return self.make_aggregated(story, site, early=early)

    def make_syndicated(self, story: Story, site: Site, *, early: bool) -> GenPage:
        """A Nexstar-style station copy: same text and title, canonical/og:url mostly to origin."""
        p, rng = story.page, self.rng
        published, fetched = self.copy_times(story, early=early, lo=5, hi=6 * 60)
        url = self.site_url(site, p.title, published, dated=False)
        canonical_orig = rng.random() < 0.75
        og_orig = rng.random() < 0.6
        credit = p.publisher if not p.nexstar else "The Hill" if "thehill" in p.url else p.publisher
        view = PageView(
            site=site, url=url, title=p.title, blocks=[("p", t) for t in p.paragraphs],
            published=published, author=p.author, credit=credit,
            copyright_line=(NEXSTAR_LINE.format(year=story.published.year)
                            if p.nexstar and rng.random() < 0.7 else None),
            canonical=story.page.url if canonical_orig else (url if rng.random() < 0.5 else None),
            og_url=story.page.url if og_orig else url,
            related=self.related_for(story, site, rng.randint(2, 4)),
        )
        return GenPage(
            url=url, body=render(view).encode(), fetched_at=fetched, story=story.key,
            is_original=False, kind="syndicator", template=site.template,
            has_disclaimer=False, source_host=site.host, expected=list(p.paragraphs),
            info={"published": published.isoformat(), "date_shown": published.isoformat(),
                  "canonical_to_original": canonical_orig, "og_url_to_original": og_orig,
                  "fetched_before_original": fetched < story.fetched_at},
        )

    def disclaimer_for(self, site: Site) -> list[str]:
        blocks = long_disclaimer(site) if site == self.shorts_site else [short_disclaimer(site)]
        for b in blocks:
            if b not in self.disclaimer_paragraphs:
                self.disclaimer_paragraphs.append(b)
        return blocks

    def make_aggregated(self, story: Story, site: Site, *, early: bool) -> GenPage:
        """A scraped copy: own chrome, tweaked title, ads, a dropped paragraph, disclaimers."""
        p, rng = story.page, self.rng
        published, fetched = self.copy_times(story, early=early, lo=20, hi=3 * 1440)
        title = tweak_title(p.title, rng) if rng.random() < 0.7 else p.title
        paragraphs = list(p.paragraphs)
        dropped = None
        if len(paragraphs) >= 4 and rng.random() < 0.3:
            dropped = rng.randrange(1, len(paragraphs))
            del paragraphs[dropped]
        blocks: list[tuple[BlockTag, str]] = [("p", t) for t in paragraphs]
        ads = rng.randint(1, 3) if rng.random() < 0.6 else 0
        for pos in sorted(rng.sample(range(1, len(blocks)), min(ads, len(blocks) - 1)),
                          reverse=True):
            blocks.insert(pos, ("ad", "ADVERTISEMENT"))
        modes: list[DateMode] = ["meta", "copyright", "future", "none"]
        mode = rng.choices(modes, weights=[55, 25, 10, 10])[0]
        shown: datetime | None = published
        lines = []
        if p.nexstar and rng.random() < 0.8:
            lines.append(NEXSTAR_LINE.format(year=story.published.year))
        if mode == "copyright":
            # A date guesser reads "(c) YEAR" as YEAR-01-01: earlier than the original.
            year = 2023 if story.published.year > 2023 else story.published.year - 1
            lines = [NEXSTAR_LINE.format(year=year) if p.nexstar else
                     f"© {year} {p.publisher}. All rights reserved."]
            shown = None
        elif mode == "future":
            shown = datetime(rng.randint(2031, 2036), rng.randint(1, 12), rng.randint(1, 28),
                             rng.randint(0, 23), tzinfo=UTC)
        elif mode == "none":
            shown = None
        disclaimers = []
        if rng.random() < 0.85 or site == self.shorts_site:
            disclaimers = self.disclaimer_for(site) * (2 if rng.random() < 0.35 else 1)
        reference = (rng.choice(["Reference", "Source"]), p.url) if rng.random() < 0.45 else None
        url = self.site_url(site, title, published, dated=mode == "meta")
        view = PageView(
            site=site, url=url, title=title, blocks=blocks,
            published=shown, date_mode=mode, credit=p.publisher,
            copyright_line=" ".join(lines) or None,
            canonical=url if rng.random() < 0.6 else None,
            og_url=url if rng.random() < 0.7 else None, reference=reference,
            disclaimers=disclaimers, dmca_image=rng.random() < 0.5,
            leave_comment=rng.random() < 0.7,
            related=self.related_for(story, site, rng.randint(4, 6)),
        )
        return GenPage(
            url=url, body=render(view).encode(), fetched_at=fetched, story=story.key,
            is_original=False, kind="aggregator" if site.listed else "unknown",
            template=site.template, has_disclaimer=bool(disclaimers), source_host=site.host,
            expected=paragraphs,
            info={"published": published.isoformat(),
                  "date_shown": shown.isoformat() if shown else None, "date_mode": mode,
                  "copyright_line": " ".join(lines) or None, "title_tweaked": title != p.title,
                  "dropped_paragraph": dropped, "advertisements": ads,
                  "disclaimer_copies": len(disclaimers), "reference_link": reference is not None,
                  "fetched_before_original": fetched < story.fetched_at},
        )

    def make_utm(self, story: Story) -> GenPage:
        """The original fetched again through a tracking link: same HTML, utm_* query."""
        url = utm_url(story.page.url, self.rng)
        return GenPage(
            url=url, body=story.html, fetched_at=story.fetched_at + minutes(self.rng, 1440, 7200),
            story=story.key, is_original=False, kind="variant", template="utm",
            has_disclaimer=False, source_host=host_of(url), content_type="text/html",
            expected=list(story.page.paragraphs),
            info={"variant_of": story.page.url,
                  "same_normalized_url": normalize_url(url) == normalize_url(story.page.url)},
        )

    def make_amp(self, story: Story) -> GenPage:
        """The AMP rendition of an original at an /amp/ URL, rel=canonical to the original."""
        url = amp_url(story.page.url)
        html = render_amp(url=url, canonical=story.page.url, title=story.page.title,
                          paragraphs=story.page.paragraphs, publisher=story.page.publisher,
                          published=story.published)
        return GenPage(
            url=url, body=html.encode(), fetched_at=story.fetched_at + minutes(self.rng, 60, 4320),
            story=story.key, is_original=False, kind="variant", template="amp",
            has_disclaimer=False, source_host=host_of(url), expected=list(story.page.paragraphs),
            info={"variant_of": story.page.url,
                  "same_normalized_url": normalize_url(url) == normalize_url(story.page.url)},
        )

    # traps

    def add_digests(self) -> None:
        """Trap (a): digest pages quoting the first paragraph of 3-5 stories; each its own story."""
        site = self.digest_site
        quotable = [s for s in self.stories
                    if len(lead(s.page.paragraphs).split()) <= 90
                    and len(lead(s.page.paragraphs).split()) <= 0.35 * s.page.words]
        for i in range(self.rng.randint(3, 5)):
            picks = self.rng.sample(quotable, min(self.rng.randint(3, 5), len(quotable)))
            if len(picks) < 3:
                return
            published = max(s.published for s in picks) + minutes(self.rng, 120, 2880)
            title = self.rng.choice(["Morning Briefing", "Top Stories You May Have Missed",
                                     "The Day in News", "Weekend Roundup"])
            title = f"{title}: {published:%B} {published.day}, {published.year}"
            blocks: list[tuple[BlockTag, str]] = [("p", "Here are the stories people are reading "
                                                  "today, in brief.")]
            for s in picks:
                blocks += [("h2", s.page.title), ("p", lead(s.page.paragraphs)),
                           ("more", s.page.url)]
            disclaimers = self.disclaimer_for(site) if self.rng.random() < 0.5 else []
            url = self.site_url(site, title, published, dated=True)
            view = PageView(site=site, url=url, title=title, blocks=blocks,
                            published=published, credit=site.name, disclaimers=disclaimers,
                            canonical=url, og_url=url, leave_comment=self.rng.random() < 0.5,
                            related=self.related_for(picks[0], site, 4), section="Briefing")
            self.pages.append(GenPage(
                url=url, body=render(view).encode(),
                fetched_at=published + minutes(self.rng, 10, 1440), story=f"digest-{i + 1:02d}",
                is_original=True, kind="digest", template=site.template,
                has_disclaimer=bool(disclaimers), source_host=site.host,
                expected=[lead(s.page.paragraphs) for s in picks],
                info={"quotes": [s.key for s in picks], "published": published.isoformat()}))

    def add_briefs(self, pool: list[CorpusPage]) -> None:
        """Trap (b): 6-9 short stories on one aggregator, each with the same long disclaimer."""
        site = self.shorts_site
        disclaimers = self.disclaimer_for(site)
        n_disc = sum(len(d.split()) for d in disclaimers)
        briefs = [(p, t) for p in pool if (t := brief_text(p)) is not None]
        if len(briefs) < 6:
            raise SystemExit(f"only {len(briefs)} short-story sources in the corpus (need 6)")
        for i, (page, text) in enumerate(briefs[: self.rng.randint(6, 9)]):
            assert sum(len(t.split()) for t in text) < n_disc
            published = (page.date or datetime(2024, 1, 1, tzinfo=UTC)) + minutes(self.rng, 60, 600)
            url = self.site_url(site, page.title, published, dated=True)
            view = PageView(site=site, url=url, title=page.title,
                            blocks=[("p", t) for t in text], published=published,
                            credit=page.publisher, disclaimers=disclaimers, canonical=url,
                            og_url=url, dmca_image=self.rng.random() < 0.5,
                            leave_comment=self.rng.random() < 0.7,
                            related=self.related_for(self.stories[0], site, 4))
            self.pages.append(GenPage(
                url=url, body=render(view).encode(),
                fetched_at=published + minutes(self.rng, 10, 1440), story=f"short-{i + 1:02d}",
                is_original=True, kind="short", template=site.template, has_disclaimer=True,
                source_host=site.host, expected=text,
                info={"words": sum(len(t.split()) for t in text), "disclaimer_words": n_disc,
                      "from": page.url, "published": published.isoformat()}))

    # reworded copies (issue 15)

    def add_reworded(self) -> None:
        """Each reworded-dev file: its real original, its reworded copy on an aggregator page
        and its independent same-event article on a newsroom's site; with a random.Random of
        its own, so the main set stays the same with or without it."""
        if not self.reworded:
            return
        rng, main_rng = random.Random(self.seed * 1_000_003 + 15), self.rng
        self.rng = rng  # make_aggregated and related_for draw from self.rng
        try:
            self._add_reworded(rng)
        finally:
            self.rng = main_rng

    def _add_reworded(self, rng: random.Random) -> None:
        bench = json.loads((corpus_dir() / FOLDERS[0] / "ground-truth.json").read_text("utf-8"))
        rows = {r["file"]: (f, r) for f in FOLDERS for r in read_manifest(f)}
        hosts = Counter(host_of(s.page.url) for s in self.stories)
        hosts.update(host_of(d["original_url"]) for d in self.reworded)
        for n, d in enumerate(self.reworded):
            folder, row = rows[d["original_file"]]
            page = load_page(folder, row, bench)
            if page is None:
                raise SystemExit(f"{d['original_file']}: no usable text for a reworded original")
            published = page.date or datetime(2019, 11, rng.randint(1, 28), tzinfo=UTC)
            if published.hour == 0 and published.minute == 0:
                published += timedelta(hours=rng.randint(6, 18), minutes=rng.randrange(60))
            key = f"rw-{n + 1:02d}"
            late = rng.random() < 0.3
            fetched = published + (minutes(rng, 4 * 1440, 10 * 1440) if late
                                   else minutes(rng, 30, 36 * 60))
            story = Story(key=key, page=page, published=published, fetched_at=fetched,
                          html=with_meta_date(page.html, published))
            self.rw_stories.append(story)
            # A late original on a site missing from sources.toml must still win its story.
            unlisted = late and hosts[host_of(page.url)] == 1 and rng.random() < 0.6
            if unlisted:
                self.unlisted_originals.add(host_of(page.url))
            self.pages.append(GenPage(
                url=page.url, body=story.html, fetched_at=fetched, story=key, is_original=True,
                kind="original", template="real:" + folder, has_disclaimer=False,
                source_host=host_of(page.url), content_type="text/html",
                expected=list(page.paragraphs),
                info={"reworded_set": True, "published": published.isoformat(),
                      "spin": d["spin"], "unlisted_original": unlisted}))
            copy_page = replace(page, title=d["copy_title"],
                                paragraphs=[p for p in d["copy_text"].split("\n\n") if p.strip()])
            copy = self.make_aggregated(replace(story, page=copy_page), rng.choice(self.aggregators),
                                        early=late)
            copy.info.update({"reworded_set": True, "spin": d["spin"]})
            self.pages.append(copy)
            if d.get("independent_text"):
                self.pages.append(self._independent(d, key, published, rng))

    def _independent(self, d: dict[str, Any], key: str, published: datetime,
                     rng: random.Random) -> GenPage:
        """The same event told independently, on a newsroom's own site."""
        site = rng.choice(NEWSROOMS)
        when = published + minutes(rng, 60, 12 * 60)
        title = d["independent_title"]
        url = f"https://www.{site.host}/{when:%Y/%m}/{slugify(title)}/"
        paragraphs = [p for p in d["independent_text"].split("\n\n") if p.strip()]
        view = PageView(site=site, url=url, title=title, blocks=[("p", t) for t in paragraphs],
                        published=when, credit=site.name, canonical=url, og_url=url,
                        related=self.related_for(self.stories[0], site, 3))
        return GenPage(url=url, body=render(view).encode(),
                       fetched_at=when + minutes(rng, 10, 1440), story=key + "-independent",
                       is_original=True, kind="independent", template=site.template,
                       has_disclaimer=False, source_host=site.host, expected=paragraphs,
                       info={"reworded_set": True, "published": when.isoformat(),
                             "same_event_as": key})

    # output

    def original_pages(self) -> list[GenPage]:
        return [GenPage(url=s.page.url, body=s.html, fetched_at=s.fetched_at, story=s.key,
                        is_original=True, kind="original", template="real:" + s.page.folder,
                        has_disclaimer=False, source_host=host_of(s.page.url),
                        content_type="text/html", expected=list(s.page.paragraphs),
                        info={"published": s.published.isoformat(), "title": s.page.title,
                              "publisher": s.page.publisher, "nexstar": s.page.nexstar,
                              "text_from": s.page.truth_source,
                              "extraction_quality": [round(q, 3) for q in s.page.quality]})
                for s in self.stories]

    def sources_toml(self) -> str:
        """The registry: original hosts, syndicators, all aggregators but the unlisted one."""
        out = ["# Generated by bench/dedupe_eval/generate.py.",
               "# One aggregator host is left out on purpose: its pages get source_kind unknown.",
               ""]
        hosts: dict[str, str] = {}
        for s in self.stories + self.rw_stories:
            if host_of(s.page.url) not in self.unlisted_originals:
                hosts.setdefault(host_of(s.page.url), s.page.publisher)
        hosts.update({s.host: s.name for s in NEWSROOMS} if self.rw_stories else {})
        entries = [(h, pub, "original") for h, pub in sorted(hosts.items())]
        entries += [(s.host, s.name, "syndicator") for s in SYNDICATORS]
        entries += [(s.host, s.name, "aggregator") for s in self.aggregators if s.listed]
        for host, publisher, kind in entries:
            out += ["[[sources]]", f"name = {json.dumps(slugify(host, 60))}",
                    f"publisher = {json.dumps(publisher)}", f'kind = "{kind}"',
                    f"domains = [{json.dumps(host)}]", "feeds = []", "enabled = true",
                    "min_delay = 0", ""]
        return "\n".join(out)

    def build(self) -> list[GenPage]:
        chosen, pool = self.choose()
        if len(chosen) < 5:
            raise SystemExit(f"only {len(chosen)} usable originals in the corpus")
        self.add_originals(chosen)
        self.plan_copies()
        self.add_digests()
        self.add_briefs(pool)
        self.add_reworded()
        pages = self.original_pages() + self.pages
        # A WARC is in crawl order; stable sort keeps generation order among equal times.
        pages.sort(key=lambda g: g.fetched_at)
        return pages


def write_set(out: Path, seed: int, originals: int, reworded: Path | None = None
              ) -> tuple[Generator, list[GenPage]]:
    """Generate and write eval.warc.gz, labels.json and sources.toml into out."""
    gen = Generator(seed, originals, reworded)
    pages = gen.build()
    out.mkdir(parents=True, exist_ok=True)
    write_warc(out / "eval.warc.gz", (
        WarcResponse(url=g.url, fetched_at=g.fetched_at, status=200, content_type=g.content_type,
                     body=g.body) for g in pages))
    labels = {"seed": seed, "originals": len(gen.stories),
              "unlisted_host": gen.unlisted.host, "shorts_host": gen.shorts_site.host,
              "digest_host": gen.digest_site.host,
              "pages": [g.label() for g in pages],
              "disclaimer_sentences": sentences(gen.disclaimer_paragraphs),
              "boilerplate_lines": list(BOILERPLATE_LINES)}
    (out / "labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    toml = gen.sources_toml()
    tomllib.loads(toml)  # fail here, not in the importer, if the registry is malformed
    (out / "sources.toml").write_text(toml, encoding="utf-8")
    return gen, pages


def summary(pages: list[GenPage]) -> str:
    """Counts per kind and template, story sizes and trap counts."""
    kinds = Counter(g.kind for g in pages)
    templates = Counter(g.template for g in pages if not g.template.startswith("real:"))
    stories = Counter(g.story for g in pages)
    norm = {(normalize_url(g.url), g.story) for g in pages}
    per_story = Counter(s for _, s in norm)
    pairs = sum(n * (n - 1) // 2 for n in per_story.values())
    early = sum(1 for g in pages if g.info.get("fetched_before_original"))
    modes = Counter(str(g.info["date_mode"]) for g in pages if "date_mode" in g.info)
    lines = [
        f"pages: {len(pages)} ({len(norm)} distinct normalized URLs), stories: {len(stories)}, "
        f"multi-member stories: {sum(1 for n in per_story.values() if n > 1)}, "
        f"same-story pairs: {pairs}",
        "per kind: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())),
        "per template: " + ", ".join(f"{k}={v}" for k, v in sorted(templates.items())),
        f"copies fetched before their original: {early}; "
        f"with disclaimer: {sum(g.has_disclaimer for g in pages)}; "
        f"aggregator date modes: {dict(modes)}",
    ]
    return "\n".join(lines)


def verify(pages: list[GenPage], stories: list[Story]) -> tuple[str, list[str]]:
    """Extract every generated page with trafilatura: is the body kept, which traps bite?"""
    by_template: dict[str, list[float]] = {}
    problems: list[str] = []
    residue = 0
    wrong_dates = 0
    published = {s.key: s.published for s in stories}
    for g in pages:
        if g.kind == "original" or g.template == "utm":
            continue
        doc = extract(g.body, g.url)
        text = doc.get("text") or ""
        score = containment("\n".join(g.expected), text)
        by_template.setdefault(g.template, []).append(score)
        if score < 0.9:
            problems.append(f"{g.url}: only {score:.2f} of the body extracted")
        if g.has_disclaimer and "denial of responsibility" in text.lower():
            residue += 1
        date = _parse_date(doc.get("date"))
        if g.story in published and date is not None and date.date() < published[g.story].date():
            wrong_dates += 1
    lines = [f"{t}: n={len(v)} body kept min={min(v):.3f} mean={sum(v) / len(v):.3f}"
             for t, v in sorted(by_template.items())]
    lines.append(f"pages whose bare trafilatura text keeps the disclaimer: {residue} of "
                 f"{sum(g.has_disclaimer for g in pages)}")
    lines.append(f"copies whose trafilatura date is earlier than their original's: {wrong_dates}")
    return "\n".join(lines), problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--originals", type=int, default=80, help="how many real originals (K)")
    ap.add_argument("--reworded", type=Path, default=None,
                    help="folder of reworded-copy JSON files (default: <shared>/reworded-dev; "
                         "'none' to leave them out)")
    ap.add_argument("--verify", action="store_true",
                    help="extract every generated page with trafilatura and report")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    reworded = args.reworded or shared_dir() / "reworded-dev"
    gen, pages = write_set(args.out, args.seed, args.originals,
                           None if str(reworded) == "none" else reworded)
    print(f"wrote {args.out}/eval.warc.gz, labels.json, sources.toml "
          f"in {time.perf_counter() - t0:.1f} s (seed {args.seed})")
    print(summary(pages))
    if args.verify:
        report, problems = verify(pages, gen.stories)
        print(report)
        for p in problems:
            print("PROBLEM", p)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
