"""Build newsflow/data/demo.warc.gz: real corpus pages plus an original/syndicator/aggregator case.

The demo WARC holds
- 25 real news pages from ../shared/corpus (the Nexstar pages: two thehill.com stories and one
  kxan.com story, plus a mix of wire, national, local, foreign-language and blog pages), under
  their real URLs, with the crawl dates of their source sets where known;
- the aggregator case of ../shared/seed/aggregator-copy-example.txt as three synthetic pages:
  the ORIGINAL on thehill.com (a RECONSTRUCTION of The Hill's wording, see HILL_PARAGRAPHS), a
  SYNDICATED copy of it on kxan.com (verbatim, rel=canonical -> thehill.com) and the AGGREGATOR
  copy on vigourtimes.com: the seed's machine-reworded text, its Nexstar copyright line, a
  "Reference" link to The Hill, the disclaimer twice and no structured date, as the seed has;
- three more vigourtimes.com copies of real articles in the demo (their ground-truth text), so
  per-site boilerplate learning sees the same disclaimer block on several pages.

Synthetic pages say so in an HTML comment. The output is deterministic: fixed dates, sorted
records, WARC-Record-IDs derived from URL and date, and warcio's gzip header carries mtime 0,
so re-running the script gives a byte-identical file (checked by --check).

Run from the repo root:  .venv/bin/python scripts/build_demo_warc.py [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import sys
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCHMARK,
    REPO,
    corpus_dir,
    fundus_truth,
    read_gz,
    read_manifest,
    shared_dir,
)

OUT = REPO / "newsflow" / "data" / "demo.warc.gz"
SYNTHETIC = "<!-- newsflow demo: synthetic page built by scripts/build_demo_warc.py -->"
RECONSTRUCTED = (
    "<!-- newsflow demo: RECONSTRUCTION, not The Hill's published text. The Hill's original is\n"
    "not in the corpus; this wording was written for the demo from the facts and paragraph order\n"
    "of the reworded copy (../shared/seed) and the words other outlets quote from The Hill's\n"
    "story: \"pay a price\", \"actively advancing\" and Sullivan's closing quote. -->")

AEB = f"{BENCHMARK}/html/"
# Real pages: corpus file -> fetch time (UTC). Fundus pages use their recorded crawl_date.
REAL_PAGES: dict[str, str | None] = {
    # Nexstar: The Hill (original) and KXAN (TV station, syndicator)
    AEB + "156770d676ce79905198e1c8407f81e5ecfb617d9aa44712718707eb7e3b8e38.html.gz":
        "2019-11-19T21:40:00",
    AEB + "6ebac05f637ece8aa57c298a2a5e3a8047f546f855d0f29cc683cea60ce85c85.html.gz":
        "2019-11-19T21:45:00",
    "trafilatura-eval/html/kxan.com-Voters.html.gz": "2023-11-09T02:15:00",
    # article-extraction-benchmark, crawled in November 2019
    AEB + "42aad16b": None,
    AEB + "e7994d55": None,
    AEB + "b6906ca0": None,
    AEB + "65ce3a45": None,
    AEB + "d1c57d78": None,
    AEB + "5a822960": None,
    AEB + "14cc2a0c": None,
    AEB + "e1c7023e": None,
    AEB + "bc13ff87": None,
    AEB + "f344ca5f": None,
    AEB + "06e5123e": None,
    AEB + "20b2b649": None,  # Italian
    # fundus (crawl_date from meta.info)
    "fundus/us/APNews_2023_04_28.html.gz": None,
    "fundus/us/FoxNews_2023_04_28.html.gz": None,
    "fundus/us/WashingtonTimes_2023_04_28.html.gz": None,  # URL with utm_ parameters
    "fundus/uk/TheGuardian_2024_02_24.html.gz": None,
    "fundus/us/VoiceOfAmerica_2024_04_28.html.gz": None,
    "fundus/jp/TheJapanNews_2024_10_13.html.gz": None,
    # newspaper4k test pages
    "newspaper4k-tests/html/cnn_article.html.gz": "2013-11-28T06:00:00",
    "newspaper4k-tests/html/cleveland.com1.html.gz": "2014-12-28T15:00:00",
    # trafilatura-eval
    "trafilatura-eval/html/threatpost.com.android.html.gz": "2019-07-31T10:00:00",
    "trafilatura-eval/html/reporternewspapers.net-Brookhaven.html.gz": "2023-11-08T21:00:00",
}
AEB_FETCHED = datetime(2019, 11, 20, 8, 0, tzinfo=UTC)  # then one page every 7 minutes

HILL_URL = "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/"
KXAN_URL = ("https://www.kxan.com/news/national-politics/the-hill/"
            "us-warns-north-korea-against-supplying-arms-to-russia/")
VIGOUR = "https://vigourtimes.com/"
NEXSTAR_LINE = ("© 2023 Nexstar Media Inc. All rights reserved. This material may not be "
                "published, broadcast, rewritten, or redistributed.")
# The aggregator's footer, verbatim from the seed (twice, with and without the space).
DISCLAIMERS = tuple(
    f"Denial of responsibility! {name} is an automatic aggregator of Global media. In each "
    "content, the hyperlink to the primary source is specified. All trademarks belong to their "
    "rightful owners, and all materials to their authors. For any complaint, please reach us at "
    "– [email protected]. We will take necessary action within 24 hours."
    for name in ("VigourTimes", "Vigour Times"))
# The Hill's story as reconstructed for the demo (see RECONSTRUCTED): the seed's facts in the
# seed's paragraph order, in the words other outlets quote from The Hill where they quote it.
HILL_PARAGRAPHS = (
    "White House national security adviser Jake Sullivan on Tuesday warned North Korea against "
    "supplying Russia with weapons for its war in Ukraine, saying Pyongyang will \u201cpay a "
    "price\u201d if it moves ahead with a possible arms deal.",
    "Sullivan told reporters that arms negotiations between North Korea and Russia are "
    "\u201cactively advancing\u201d and could lead to a meeting between the two countries\u2019 "
    "leaders.",
    "Sullivan called the talks \u201cintense\u201d and said North Korea would pay a price in the "
    "international community if it sent Russia weapons to attack critical infrastructure and "
    "sovereign territory, a decision he said would not reflect well on Pyongyang.",
    "U.S. officials have said North Korean leader Kim Jong Un may travel to Russia to meet "
    "Russian President Vladimir Putin. According to the officials, Moscow wants to buy "
    "ammunition from North Korea and would send food and critical technology to Pyongyang in "
    "return.",
    "North Korea\u2019s large defense industrial base for artillery shells could be useful to "
    "Russian troops fighting in Ukraine.",
    "Fears of a military partnership between Pyongyang and Moscow have grown since Russian "
    "Defense Minister Sergei Shoigu visited North Korea in July.",
    "Sullivan said Shoigu asked for military support during that trip, and called Russia "
    "desperate, saying it is turning to any source it can find to back its war in Ukraine.",
    "The U.S. has already sanctioned North Korean entities that supplied arms and ammunition to "
    "the Wagner Group, the mercenary force that fought for Moscow in Ukraine, but there is so "
    "far no direct evidence that North Korea is arming Russia\u2019s military.",
    "Washington has recently warned that this could change. Sullivan said the U.S. and its "
    "allies will keep pressing North Korea not to strike a deal, and that the White House will "
    "tell the public what it learns.",
    "\u201cWe will continue to call on North Korea to abide by its public commitments not to "
    "supply weapons to Russia that will end up killing Ukrainians,\u201d Sullivan said.",
)


@dataclass(kw_only=True, frozen=True)
class Record:
    """One response record of the demo WARC."""

    url: str
    fetched_at: datetime
    body: bytes
    label: str  # what the page is, for the build summary


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _resolve(file: str) -> str:
    """A corpus path, expanding an abbreviated benchmark hash to its one matching file."""
    if file.startswith(AEB) and len(Path(file).name) < 20:
        matches = sorted((corpus_dir() / AEB).glob(Path(file).name + "*.html.gz"))
        if len(matches) != 1:
            raise SystemExit(f"{file}: {len(matches)} corpus files match")
        return AEB + matches[0].name
    return file


def real_records() -> list[Record]:
    """The real corpus pages, under their recorded URLs."""
    rows = {r["file"]: r for folder in (BENCHMARK, "fundus", "trafilatura-eval",
                                        "newspaper4k-tests") for r in read_manifest(folder)}
    records, aeb_index = [], 0
    for short, when in REAL_PAGES.items():
        file = _resolve(short)
        if file not in rows:
            raise SystemExit(f"{file} is not in the corpus manifests")
        row = rows[file]
        if when:
            fetched = _utc(when)
        elif file.startswith("fundus/"):
            meta = json.loads((corpus_dir() / file).with_name("meta.info").read_text("utf-8"))
            fetched = _utc(meta[Path(file).name]["crawl_date"][:19].replace(" ", "T"))
        else:
            fetched = AEB_FETCHED + timedelta(minutes=7 * aeb_index)
            aeb_index += 1
        label = f"real {row['publisher']}" + (" (Nexstar)" if row["nexstar"] == "yes" else "")
        records.append(Record(url=row["url"], fetched_at=fetched,
                              body=read_gz(corpus_dir() / file), label=label))
    return records


def seed_article() -> tuple[str, list[str]]:
    """Title and body paragraphs of the seed aggregator copy (footer lines left out)."""
    text = (shared_dir() / "seed" / "aggregator-copy-example.txt").read_text(encoding="utf-8")
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    title, body = blocks[0], []
    for block in blocks[1:]:
        if block.startswith("©"):
            break
        body.append(block)
    return title, body


def _paragraphs(paragraphs: Iterable[str]) -> str:
    return "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def hill_original(paragraphs: Sequence[str]) -> str:
    """The ORIGINAL story on thehill.com, in a Hill-like template (its text a reconstruction)."""
    title = "US warns North Korea against supplying arms to Russia"
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
{SYNTHETIC}
{RECONSTRUCTED}
<meta charset="UTF-8">
<title>{e(title)} | The Hill</title>
<link rel="canonical" href="{HILL_URL}">
<meta property="og:type" content="article">
<meta property="og:site_name" content="The Hill">
<meta property="og:title" content="{e(title)}">
<meta property="og:url" content="{HILL_URL}">
<meta name="author" content="Hill Staff">
<meta property="article:published_time" content="2023-09-05T13:32:00-04:00">
<meta property="article:section" content="International">
</head>
<body class="single single-post">
<header class="site-header">
<a class="skip-link" href="#main">Skip to content</a>
<nav class="site-nav"><ul>
<li><a href="https://thehill.com/news/">News</a></li>
<li><a href="https://thehill.com/policy/">Policy</a></li>
<li><a href="https://thehill.com/opinion/">Opinion</a></li>
<li><a href="https://thehill.com/video/">Video</a></li>
<li><a href="https://thehill.com/newsletters/">Newsletters</a></li>
</ul></nav>
</header>
<main id="main">
<article class="article">
<header class="article__header">
<p class="section-label"><a href="https://thehill.com/policy/international/">International</a></p>
<h1 class="page-title">{e(title)}</h1>
<div class="byline">by <a href="https://thehill.com/author/hill-staff/" rel="author">Hill Staff</a>
 - <time datetime="2023-09-05T13:32:00-04:00">09/05/23 1:32 PM ET</time></div>
</header>
<div class="article-text">
{_paragraphs(paragraphs)}
<p class="copyright">{e(NEXSTAR_LINE)}</p>
</div>
</article>
<aside class="most-popular"><h2>Most Popular</h2><ol>
<li><a href="https://thehill.com/homenews/senate/">
Senate returns to a crowded September agenda</a></li>
<li><a href="https://thehill.com/policy/defense/">
Pentagon outlines next Ukraine aid package</a></li>
</ol></aside>
</main>
<footer class="site-footer">
<p>The Hill 1625 K Street, NW Suite 900 Washington DC 20006 | 202-628-8500 tel</p>
<p>THE HILL A NEXSTAR MEDIA WEBSITE. © 1998 - 2023 Nexstar Media Inc. All Rights Reserved.</p>
</footer>
</body>
</html>
"""


def kxan_copy(paragraphs: Sequence[str]) -> str:
    """The SYNDICATED copy on a Nexstar TV-station site, canonical -> thehill.com."""
    title = "US warns North Korea against supplying arms to Russia"
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
{SYNTHETIC}
{RECONSTRUCTED}
<meta charset="UTF-8">
<title>{e(title)} | KXAN Austin</title>
<link rel="canonical" href="{HILL_URL}">
<meta property="og:site_name" content="KXAN Austin">
<meta property="og:title" content="{e(title)}">
<meta property="og:url" content="{KXAN_URL}">
<meta property="article:published_time" content="2023-09-05T14:10:00-04:00">
<meta name="author" content="Hill Staff, The Hill">
</head>
<body class="post-template-default single">
<div class="site-header">
<div class="weather-bar"><a href="https://www.kxan.com/weather/">Austin Weather</a> 91°</div>
<nav class="main-nav"><ul>
<li><a href="https://www.kxan.com/news/">News</a></li>
<li><a href="https://www.kxan.com/weather/">Weather</a></li>
<li><a href="https://www.kxan.com/investigations/">Investigations</a></li>
<li><a href="https://www.kxan.com/news/national-politics/the-hill/">The Hill</a></li>
<li><a href="https://www.kxan.com/live/">Watch Live</a></li>
</ul></nav>
</div>
<div class="article-wrapper">
<article class="story">
<header class="article-header">
<h1 class="article-title">{e(title)}</h1>
<p class="article-authors">by: Hill Staff, The Hill</p>
<p class="article-dates">Posted:
<time datetime="2023-09-05T14:10:00-04:00">Sep 5, 2023 / 02:10 PM CDT</time></p>
</header>
<div class="post-content">
{_paragraphs(paragraphs)}
<p>{e(NEXSTAR_LINE)}</p>
</div>
</article>
<aside class="trending"><h2>Trending Stories</h2><ul>
<li><a href="https://www.kxan.com/news/local/austin/">Austin council weighs new budget</a></li>
<li><a href="https://www.kxan.com/weather/">Heat advisory extended for Central Texas</a></li>
</ul></aside>
</div>
<footer class="site-footer">
<p>KXAN Austin is an NBC affiliate owned by Nexstar Media Inc.</p>
<p>© 1998 - 2023 Nexstar Media Inc. | All Rights Reserved.</p>
</footer>
</body>
</html>
"""


@dataclass(kw_only=True, frozen=True)
class AggregatorPost:
    """One vigourtimes.com copy: its slug, title, date, body and the original it links to."""

    slug: str
    title: str
    published: str  # ISO 8601 with offset
    paragraphs: tuple[str, ...]
    reference: str
    copyright_line: str | None = None
    dated: bool = True  # False: the page gives no date (no meta tag, no <time>), like the seed


def vigour_page(post: AggregatorPost, others: Sequence[AggregatorPost]) -> str:
    """An aggregator copy in a WordPress-like template, with the seed's footer block."""
    e = html.escape
    url = VIGOUR + post.slug + "/"
    related = "\n".join(f'<li><a href="{VIGOUR}{o.slug}/">{e(o.title)}</a></li>'
                        for o in others if o.slug != post.slug)
    tail = [f"<p>{e(post.copyright_line)}</p>"] if post.copyright_line else []
    tail.append(f'<p><a href="{e(post.reference)}" target="_blank" rel="noopener">'
                'Reference</a></p>')
    tail.extend(f"<p>{e(d)}</p>" for d in DISCLAIMERS)
    day = post.published[:10]
    date_meta = (f'<meta property="article:published_time" content="{post.published}">\n'
                 if post.dated else "")
    posted_on = (f'<span class="posted-on">\n<time class="entry-date published" '
                 f'datetime="{post.published}">{day}</time></span>\n ' if post.dated else "")
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
{SYNTHETIC}
<meta charset="UTF-8">
<title>{e(post.title)} - Vigour Times</title>
<link rel="canonical" href="{url}">
<meta property="og:site_name" content="Vigour Times">
<meta property="og:title" content="{e(post.title)}">
<meta property="og:url" content="{url}">
{date_meta}<meta name="generator" content="WordPress 6.3.1">
</head>
<body class="post-template-default single single-post">
<header id="masthead" class="site-header">
<p class="site-title"><a href="{VIGOUR}">Vigour Times</a></p>
<nav id="site-navigation"><ul id="primary-menu" class="menu">
<li><a href="{VIGOUR}">Home</a></li>
<li><a href="{VIGOUR}category/world/">World</a></li>
<li><a href="{VIGOUR}category/politics/">Politics</a></li>
<li><a href="{VIGOUR}category/business/">Business</a></li>
<li><a href="{VIGOUR}category/entertainment/">Entertainment</a></li>
</ul></nav>
</header>
<div id="content" class="site-content">
<main id="primary" class="site-main">
<article class="post type-post status-publish format-standard">
<header class="entry-header">
<h1 class="entry-title">{e(post.title)}</h1>
<div class="entry-meta">{posted_on}<span class="byline">by
<a href="{VIGOUR}author/vigourtimes/">VigourTimes</a></span></div>
</header>
<div class="entry-content">
{_paragraphs(post.paragraphs)}
{chr(10).join(tail)}
<p class="dmca-badge">DMCA compliant image</p>
</div>
</article>
<div id="comments" class="comments-area">
<h3 id="reply-title" class="comment-reply-title">Leave a Comment</h3>
<form id="commentform" class="comment-form"><textarea name="comment"></textarea>
<input type="submit" value="Post Comment"></form>
</div>
</main>
<aside id="secondary" class="widget-area"><section class="widget">
<h2 class="widget-title">Recent Posts</h2><ul>
{related}
</ul></section></aside>
</div>
<footer id="colophon" class="site-footer"><p>© 2023 Vigour Times. All rights reserved.</p>
<p><a href="{VIGOUR}privacy-policy/">Privacy Policy</a> | <a href="{VIGOUR}dmca/">DMCA</a>
 | <a href="{VIGOUR}contact-us/">Contact Us</a></p>
</footer>
</body>
</html>
"""


def fundus_post(file: str, slug: str, title: str, published: str) -> AggregatorPost:
    """An aggregator copy of a fundus page's ground-truth body, referencing its real URL."""
    row = next(r for r in read_manifest("fundus") if r["file"] == file)
    return AggregatorPost(slug=slug, title=title, published=published,
                          paragraphs=fundus_truth(row).paragraphs, reference=row["url"])


def synthetic_records() -> list[Record]:
    """The North Korea story three times (The Hill, KXAN, reworded on Vigour Times), plus three
    more aggregator copies."""
    seed_title, paragraphs = seed_article()
    posts = [
        AggregatorPost(slug="us-issues-warning-to-north-korea-regarding-arms-supply-to-russia",
                       title=seed_title, published="2023-09-06T08:14:00+00:00",
                       paragraphs=tuple(paragraphs), reference=HILL_URL,
                       copyright_line=NEXSTAR_LINE, dated=False),
        fundus_post("fundus/us/APNews_2023_04_28.html.gz",
                    "mexicos-economy-expands-1-1-in-first-quarter",
                    "Mexico’s Economy Expands 1.1% in First Quarter, 3.8% Year on Year",
                    "2023-04-29T05:12:00+00:00"),
        fundus_post("fundus/us/FoxNews_2023_04_28.html.gz",
                    "house-china-committee-presses-fbi-on-chinese-police-stations",
                    "House China Committee Presses FBI for Answers on Chinese Police Stations",
                    "2023-04-29T06:40:00+00:00"),
        fundus_post("fundus/us/WashingtonTimes_2023_04_28.html.gz",
                    "indiana-governor-backs-revised-gop-budget-package",
                    "Indiana Governor Backs Revised GOP State Budget Package",
                    "2023-04-29T07:05:00+00:00"),
    ]
    records = [
        Record(url=HILL_URL, fetched_at=_utc("2023-09-05T18:05:00"),
               body=hill_original(HILL_PARAGRAPHS).encode(),
               label="reconstructed original (The Hill)"),
        Record(url=KXAN_URL, fetched_at=_utc("2023-09-05T19:40:00"),
               body=kxan_copy(HILL_PARAGRAPHS).encode(), label="synthetic syndicated copy (KXAN)"),
    ]
    for post in posts:
        # fetched an hour after the aggregator published it
        fetched = datetime.fromisoformat(post.published).astimezone(UTC) + timedelta(hours=1)
        records.append(Record(url=VIGOUR + post.slug + "/", fetched_at=fetched,
                              body=vigour_page(post, posts).encode(),
                              label="synthetic aggregator copy (Vigour Times)"))
    return records


def record_id(rec: Record) -> str:
    """A stable WARC-Record-ID, so a rebuild is byte-identical."""
    name = f"{rec.fetched_at:%Y%m%d%H%M%S} {rec.url}"
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"


def write_demo(path: Path, records: Sequence[Record]) -> None:
    """Write the records as gzipped WARC response records, in a fixed order."""
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)  # zlib gzip framing: header mtime is 0
        for rec in sorted(records, key=lambda r: (r.fetched_at, r.url)):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=UTF-8"),
                                               ("Content-Length", str(len(rec.body)))],
                                    protocol="HTTP/1.1")
            warc = writer.create_warc_record(
                rec.url, "response", payload=BytesIO(rec.body), http_headers=http,
                warc_headers_dict={"WARC-Date": f"{rec.fetched_at:%Y-%m-%dT%H:%M:%SZ}",
                                   "WARC-Record-ID": record_id(rec)})
            writer.write_record(warc)


def build(path: Path) -> list[Record]:
    """Build the demo WARC at path; returns its records."""
    records = real_records() + synthetic_records()
    urls = [r.url for r in records]
    if len(set(urls)) != len(urls):
        raise SystemExit("duplicate URLs in the demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_demo(path, records)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Build the demo WARC and print what is in it."""
    parser = argparse.ArgumentParser(description="Build the bundled demo WARC.")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="build twice into a temp dir and fail unless byte-identical")
    args = parser.parse_args(argv)
    records = build(args.out)
    for rec in sorted(records, key=lambda r: (r.fetched_at, r.url)):
        print(f"{rec.fetched_at:%Y-%m-%d %H:%M}  {rec.label:<44} {rec.url}")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"{len(records)} records, {args.out.stat().st_size / 1e6:.2f} MB, sha256 {digest}"
          f" -> {args.out}")
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            again = Path(tmp) / "again.warc.gz"
            build(again)
            if again.read_bytes() != args.out.read_bytes():
                print("NOT byte-identical on rebuild", file=sys.stderr)
                return 1
        print("rebuild is byte-identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
