"""HTML templates of the dedupe evaluation set: syndicator, aggregator and AMP pages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Literal

BlockTag = Literal["p", "h2", "ad", "more"]
DateMode = Literal["meta", "copyright", "future", "none"]

SYNDICATOR_TEMPLATES: tuple[str, ...] = ("nxs-station-a", "nxs-station-b", "nxs-station-c")
AGGREGATOR_TEMPLATES: tuple[str, ...] = ("agg-wp-news", "agg-magazine", "agg-blogger")


@dataclass(kw_only=True, frozen=True)
class Site:
    """A generated website: host, display name, its one template and its sources.toml role."""

    host: str  # without www.
    name: str
    template: str
    kind: Literal["syndicator", "aggregator", "original"]
    listed: bool = True  # False: deliberately missing from sources.toml (source_kind unknown)
    email: str = ""
    local_titles: tuple[str, ...] = ()  # station-local headlines for syndicator sidebars


@dataclass(kw_only=True)
class PageView:
    """Everything a template needs to render one generated page."""

    site: Site
    url: str
    title: str  # the visible headline
    blocks: list[tuple[BlockTag, str]]  # the article body, in order
    published: datetime | None = None  # shown in meta and on the page when date_mode allows
    date_mode: DateMode = "meta"
    author: str | None = None
    credit: str = ""  # the original publisher, shown in bylines
    copyright_line: str | None = None  # a "(c) 2023 ..." line at the end of the body
    canonical: str | None = None
    og_url: str | None = None
    reference: tuple[str, str] | None = None  # ("Reference" | "Source", original URL)
    disclaimers: list[str] = field(default_factory=list)  # paragraphs, already repeated
    dmca_image: bool = False
    leave_comment: bool = False
    related: list[tuple[str, str]] = field(default_factory=list)  # (title, url) of OTHER stories
    section: str = "News"


def _date_meta(v: PageView) -> str:
    if v.published is None or v.date_mode not in ("meta", "future"):
        return ""
    iso = v.published.isoformat()
    return (f'<meta property="article:published_time" content="{iso}">\n'
            f'<meta property="article:modified_time" content="{iso}">\n')


def _head(v: PageView, *, suffix: str, json_ld: bool = False) -> str:
    """The <head>: title, description, canonical/og:url when set, dates when the mode shows them."""
    parts = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(v.title)}{escape(suffix)}</title>",
        f'<meta property="og:title" content="{escape(v.title, quote=True)}">',
        f'<meta property="og:site_name" content="{escape(v.site.name, quote=True)}">',
        '<meta property="og:type" content="article">',
    ]
    first = next((t for tag, t in v.blocks if tag == "p"), "")
    parts.append(f'<meta name="description" content="{escape(first[:160], quote=True)}">')
    if v.canonical:
        parts.append(f'<link rel="canonical" href="{escape(v.canonical, quote=True)}">')
    if v.og_url:
        parts.append(f'<meta property="og:url" content="{escape(v.og_url, quote=True)}">')
    parts.append(_date_meta(v))
    if json_ld and v.published is not None and v.date_mode in ("meta", "future"):
        ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": v.title,
              "datePublished": v.published.isoformat(), "dateModified": v.published.isoformat(),
              "author": {"@type": "Person", "name": v.author or v.credit or v.site.name},
              "publisher": {"@type": "Organization", "name": v.site.name}}
        parts.append(f'<script type="application/ld+json">{json.dumps(ld)}</script>')
    parts.append('<link rel="stylesheet" href="/wp-content/themes/site/style.css">')
    return "<head>\n" + "\n".join(p for p in parts if p) + "\n</head>"


def _paragraphs(v: PageView, *, ad_markup: str = "p") -> str:
    """The body blocks; ADVERTISEMENT lines stay in the text flow, as scraped copies have them."""
    out = []
    for tag, text in v.blocks:
        if tag == "p":
            out.append(f"<p>{escape(text)}</p>")
        elif tag == "h2":
            out.append(f"<h2>{escape(text)}</h2>")
        elif tag == "ad":
            if ad_markup == "p":
                out.append("<p>ADVERTISEMENT</p>")
            else:
                out.append('<div class="code-block code-block-3" style="margin: 8px auto;">'
                           "<span>ADVERTISEMENT</span></div>")
        else:  # "more": a read-more link of a digest
            out.append(f'<p><a href="{escape(text, quote=True)}">Read the full story</a></p>')
    return "\n".join(out)


def _tail(v: PageView) -> str:
    """What aggregators append after the story: copyright, reference, disclaimers, image notice."""
    out = []
    if v.copyright_line:
        out.append(f"<p>{escape(v.copyright_line)}</p>")
    if v.reference:
        label, href = v.reference
        out.append(f'<p><a href="{escape(href, quote=True)}" rel="nofollow noopener" '
                   f'target="_blank">{escape(label)}</a></p>')
    out.extend(f"<p>{escape(d)}</p>" for d in v.disclaimers)
    if v.dmca_image:
        out.append('<p><img src="/wp-content/uploads/dmca-badge.png" alt="">'
                   "DMCA compliant image</p>")
    return "\n".join(out)


def _nice_date(d: datetime) -> str:
    return d.strftime("%b %d, %Y / %I:%M %p UTC").replace(" 0", " ")


def _visible_date(v: PageView, prefix: str = "") -> str:
    if v.published is None or v.date_mode not in ("meta", "future"):
        return ""
    return f'<time datetime="{v.published.isoformat()}">{prefix}{_nice_date(v.published)}</time>'


def _related_list(v: PageView, heading: str) -> str:
    items = "".join(f'<li><a href="{escape(u, quote=True)}">{escape(t)}</a></li>'
                    for t, u in v.related)
    return f"<h3>{escape(heading)}</h3><ul>{items}</ul>" if items else ""


def _comment_form(v: PageView) -> str:
    if not v.leave_comment:
        return ""
    return ('<div id="respond" class="comment-respond"><h3 id="reply-title">Leave a Comment</h3>'
            '<form action="/wp-comments-post.php" method="post"><textarea name="comment">'
            '</textarea><input name="author" placeholder="Name*"><input type="submit" '
            'value="Post Comment"></form></div>')


def _station_nav(site: Site) -> str:
    items = ["News", "Weather", "Sports", "Community", "Contests", "Live", "Newsletters"]
    links = "".join(f'<li><a href="/{i.lower()}/">{i}</a></li>' for i in items)
    return (f'<nav class="site-nav" aria-label="Main"><a class="logo" href="/">{escape(site.name)}'
            f"</a><ul>{links}</ul></nav>")


def _station_sidebar(v: PageView, heading: str) -> str:
    local = [(t, f"https://www.{v.site.host}/news/local/{i}/") for i, t in
             enumerate(v.site.local_titles)]
    items = "".join(f'<li><a href="{u}">{escape(t)}</a></li>' for t, u in local + v.related)
    return f'<aside class="sidebar"><h3>{escape(heading)}</h3><ol>{items}</ol></aside>'


def _station_footer(site: Site) -> str:
    return (f'<footer class="site-footer"><p>{escape(site.name)} is a Nexstar Media station.</p>'
            '<ul><li><a href="/privacy/">Privacy Policy</a></li><li><a href="/terms/">Terms Of '
            'Use</a></li><li><a href="/eeo/">EEO Report</a></li><li><a href="/fcc/">FCC Public '
            "File</a></li></ul><p>Copyright Nexstar Media Inc. All rights reserved.</p></footer>")


def render_nxs_station_a(v: PageView) -> str:
    """Nexstar-like station page: Posted/Updated stamps, Trending Stories sidebar."""
    credit = escape(v.credit)
    byline = f"by: {escape(v.author)}, {credit}" if v.author else f"by: {credit}"
    date = _visible_date(v, "Posted: ")
    return f"""<!DOCTYPE html>
<html lang="en-US">
{_head(v, suffix=f" | {v.site.name}")}
<body class="post-template-default single single-post">
<header class="site-header">{_station_nav(v.site)}
<div class="alert-banner">Weather alerts in effect for 3 counties</div></header>
<main id="main" class="site-main">
<article class="article">
<header class="article-header"><div class="article-kicker">{escape(v.section)}</div>
<h1 class="article-title">{escape(v.title)}</h1>
<div class="article-authors">{byline}</div><div class="article-info">{date}</div></header>
<div class="article-content article-body rich-text">
{_paragraphs(v)}
{_tail(v)}
</div>
<div class="article-share"><a href="#">Facebook</a> <a href="#">Twitter</a>
<a href="#">Email</a></div>
</article>
{_station_sidebar(v, "Trending Stories")}
</main>
{_station_footer(v.site)}
</body></html>"""


def render_nxs_station_b(v: PageView) -> str:
    """Second station layout: breadcrumbs, JSON-LD, entry-content, Don't Miss list."""
    byline = escape(v.author or v.credit)
    date = _visible_date(v)
    return f"""<!DOCTYPE html>
<html lang="en">
{_head(v, suffix=f" - {v.site.name}", json_ld=True)}
<body class="single">
<div id="page">
<header id="masthead">{_station_nav(v.site)}</header>
<div class="breadcrumbs"><a href="/">Home</a> &rsaquo; <a href="/news/">News</a> &rsaquo;
<a href="/news/national/">National</a></div>
<div id="content" class="content-area">
<article class="post type-post status-publish">
<h1 class="entry-title">{escape(v.title)}</h1>
<div class="entry-meta"><span class="byline">By {byline}</span> {date}</div>
<div class="entry-content">
{_paragraphs(v)}
{_tail(v)}
</div>
</article>
<aside class="widget-area"><div class="widget">{_related_list(v, "Don't Miss")}</div>
<div class="widget"><h3>Latest Videos</h3><ul><li>Morning forecast</li><li>Traffic update</li>
</ul></div></aside>
</div>
{_station_footer(v.site)}
</div>
</body></html>"""


def render_nxs_station_c(v: PageView) -> str:
    """Third station layout: main/post-body, Top Stories sidebar, app download banner."""
    byline = escape(v.author or v.credit)
    date = _visible_date(v, "Published ")
    return f"""<!DOCTYPE html>
<html lang="en-US">
{_head(v, suffix=f" | {v.site.name}")}
<body>
<header>{_station_nav(v.site)}<div class="app-banner">Download the {escape(v.site.name)} app</div>
</header>
<div class="layout">
<main id="main-content">
<h1 class="headline">{escape(v.title)}</h1>
<p class="byline">{byline} &middot; {date}</p>
<div class="post-body" itemprop="articleBody">
{_paragraphs(v)}
{_tail(v)}
</div>
</main>
{_station_sidebar(v, "Top Stories")}
</div>
{_station_footer(v.site)}
</body></html>"""


def _agg_nav(site: Site) -> str:
    cats = ["World", "Politics", "Business", "Tech", "Entertainment", "Sports", "Health"]
    links = "".join(f'<li><a href="/category/{c.lower()}/">{c}</a></li>' for c in cats)
    return f'<nav class="main-navigation"><ul class="menu">{links}</ul></nav>'


def _agg_footer(site: Site) -> str:
    return (f'<footer id="colophon" class="site-footer"><div class="site-info">'
            f'<a href="/about-us/">About Us</a> | <a href="/dmca/">DMCA</a> | '
            f'<a href="/privacy-policy/">Privacy Policy</a> | <a href="/contact/">Contact</a>'
            f"<p>All rights reserved by {escape(site.name)}.</p></div></footer>")


def render_agg_wp_news(v: PageView) -> str:
    """Generic WordPress news aggregator, like the seed copy: related posts, comment form."""
    date = _visible_date(v)
    ad = "div" if len(v.blocks) % 2 else "p"
    return f"""<!DOCTYPE html>
<html lang="en-US">
{_head(v, suffix=f" - {v.site.name}")}
<body class="post-template-default single">
<header id="masthead" class="site-header"><div class="site-branding">
<p class="site-title"><a href="/">{escape(v.site.name)}</a></p>
<p class="site-description">Latest news from around the world</p></div>
{_agg_nav(v.site)}</header>
<div id="content" class="site-content"><div id="primary" class="content-area">
<main id="main" class="site-main">
<article class="post type-post status-publish format-standard hentry">
<header class="entry-header"><h1 class="entry-title">{escape(v.title)}</h1>
<div class="entry-meta"><span class="posted-on">{date}</span>
<span class="byline">by <a href="/author/admin/">admin</a></span></div></header>
<div class="entry-content">
{_paragraphs(v, ad_markup=ad)}
{_tail(v)}
</div>
</article>
<div class="related-posts">{_related_list(v, "Related Posts")}</div>
{_comment_form(v)}
</main></div>
<aside id="secondary" class="widget-area">{_related_list(v, "Recent Posts")}
<section class="widget"><h3>Categories</h3><ul><li>World</li><li>Politics</li></ul></section>
</aside></div>
{_agg_footer(v.site)}
</body></html>"""


def render_agg_magazine(v: PageView) -> str:
    """Magazine-theme aggregator (td-post-content), trending ticker, 'You may also like'."""
    date = _visible_date(v)
    ticker = "".join(f"<li>{escape(t)}</li>" for t, _ in v.related[:3])
    return f"""<!DOCTYPE html>
<html lang="en">
{_head(v, suffix=f" | {v.site.name}", json_ld=True)}
<body class="td-standard-pack">
<div class="td-header-wrap"><div class="td-header-top-menu"><span>{escape(v.site.name)}</span>
<div class="td-trending-now"><span>Trending Now</span><ul>{ticker}</ul></div></div>
{_agg_nav(v.site)}</div>
<div class="td-main-content-wrap">
<div class="td-post-header"><ul class="td-category"><li>{escape(v.section)}</li></ul>
<h1 class="entry-title">{escape(v.title)}</h1>
<div class="td-module-meta-info">{date} <span class="td-post-views">1,204</span></div></div>
<article class="td-post-content tagdiv-type">
{_paragraphs(v, ad_markup="div")}
{_tail(v)}
</article>
<aside class="td-related-posts">{_related_list(v, "You may also like")}</aside>
{_comment_form(v)}
</div>
<aside class="td-sidebar">{_related_list(v, "Most Popular")}</aside>
{_agg_footer(v.site)}
</body></html>"""


def render_agg_blogger(v: PageView) -> str:
    """Blogger-style aggregator: paragraphs split by <br><br> inside post-body."""
    date = _visible_date(v)
    chunks = []
    for tag, text in v.blocks:
        if tag == "ad":
            chunks.append("ADVERTISEMENT")
        elif tag == "more":
            chunks.append(f'<a href="{escape(text, quote=True)}">Read the full story</a>')
        else:
            chunks.append(f"<b>{escape(text)}</b>" if tag == "h2" else escape(text))
    body = "<br /><br />\n".join(chunks)
    return f"""<!DOCTYPE html>
<html>
{_head(v, suffix="")}
<body>
<div class="header-outer"><h2 class="title"><a href="/">{escape(v.site.name)}</a></h2>
{_agg_nav(v.site)}</div>
<div class="main-outer"><div class="main-inner">
<div class="date-header"><span>{date}</span></div>
<div class="post hentry">
<h3 class="post-title entry-title">{escape(v.title)}</h3>
<div class="post-body entry-content">
{body}
{_tail(v)}
</div>
<div class="post-footer"><span class="post-author">Posted by Editor</span>
<span class="post-labels">Labels: {escape(v.section)}</span></div>
</div>
{_comment_form(v)}
</div>
<aside class="sidebar">{_related_list(v, "Popular Posts")}
<div class="widget"><h2>Blog Archive</h2><ul><li>2024 (912)</li><li>2023 (1,530)</li></ul></div>
</aside></div>
<footer class="footer-outer">Powered by Blogger. {escape(v.site.name)}.</footer>
</body></html>"""


def render_news_site(v: PageView) -> str:
    """An independent newsroom's own article page (the reworded set's same-event stories)."""
    byline = f"By {escape(v.author)}" if v.author else f"By {escape(v.site.name)} staff"
    return f"""<!DOCTYPE html>
<html lang="en">
{_head(v, suffix=f" | {v.site.name}", json_ld=True)}
<body class="article-page">
<header class="masthead"><a class="brand" href="/">{escape(v.site.name)}</a>
<nav><a href="/local/">Local</a> <a href="/nation/">Nation</a> <a href="/world/">World</a>
<a href="/business/">Business</a> <a href="/opinion/">Opinion</a></nav></header>
<main><article>
<h1>{escape(v.title)}</h1>
<p class="byline">{byline} · {_visible_date(v)}</p>
<div class="article-body">
{_paragraphs(v)}
</div>
</article>
<section class="more">{_related_list(v, "More from " + v.site.name)}</section>
</main>
<footer><p>© {escape(v.site.name)}. Subscribe for unlimited access.</p></footer>
</body></html>"""


RENDERERS = {
    "nxs-station-a": render_nxs_station_a,
    "nxs-station-b": render_nxs_station_b,
    "nxs-station-c": render_nxs_station_c,
    "agg-wp-news": render_agg_wp_news,
    "agg-magazine": render_agg_magazine,
    "agg-blogger": render_agg_blogger,
    "news-site": render_news_site,
}


def render(v: PageView) -> str:
    """The page HTML in its site's template."""
    return RENDERERS[v.site.template](v)


def render_amp(*, url: str, canonical: str, title: str, paragraphs: list[str], publisher: str,
               published: datetime | None) -> str:
    """An AMP rendition of an original page: stripped chrome, rel=canonical to the original."""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    meta = (f'<meta property="article:published_time" content="{published.isoformat()}">'
            if published else "")
    return f"""<!doctype html>
<html amp lang="en">
<head><meta charset="utf-8"><title>{escape(title)}</title>
<link rel="canonical" href="{escape(canonical, quote=True)}">
<meta name="viewport" content="width=device-width,minimum-scale=1,initial-scale=1">
{meta}
<script async src="https://cdn.ampproject.org/v0.js"></script>
<style amp-boilerplate>body{{visibility:hidden}}</style></head>
<body>
<header class="amp-header">
<a href="{escape(canonical, quote=True)}">{escape(publisher)}</a></header>
<article class="amp-article">
<h1>{escape(title)}</h1>
{body}
</article>
<footer class="amp-footer"><a href="{escape(canonical, quote=True)}">View full site</a></footer>
</body></html>"""
