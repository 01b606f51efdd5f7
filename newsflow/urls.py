"""URL normalization: one spelling per article, so re-discovery and re-import add nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters known to track the click and never select content: the click ids of ad
# and social platforms, mail campaigns and analytics (after the lists courlan cites: AdGuard's
# TrackParamFilter, ClearURLs, Firefox's query stripping). Only exact names and the prefixes
# below: a short generic name (cid, src, ref, rss, id, page) selects the page on some sites
# (story.php?cid=123), so it is never dropped unless a source lists it (tracking_params).
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "ttclid", "igshid", "li_fat_id", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi",
    "mkt_tok", "ref_src", "ref_url", "cmpid", "smid", "smtyp", "ncid", "sr_share", "taid",
    "ito", "ocid", "guccounter", "guce_referrer", "guce_referrer_sig", "at_medium",
    "at_campaign", "traffic_source", "spm", "wt_mc", "wt.mc_id", "s_cid", "soc_src", "soc_trk",
    "ipid",  # Nexstar promo-block links: ?ipid=promo-link-block1
})
TRACKING_PREFIXES = ("utm_", "mkt_", "pk_", "mtm_", "hsa_", "__hs", "oly_", "vero_")


def _is_tracking(key: str, extra: Collection[str] = ()) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES) or k in extra


def normalize_url(url: str, base: str | None = None, *, drop: Collection[str] = ()) -> str:
    """Absolute, lower-case scheme and host, no fragment, default port or tracking parameters.

    drop: more parameter names (lower case) to remove, a source's own `tracking_params`.
    """
    url = url.strip()
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port if parts.port and (scheme, parts.port) not in (("http", 80), ("https", 443)) else None
    netloc = host + (f":{port}" if port else "")
    # netloc is rebuilt from host and port only: credentials never belong in a stored URL.
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not _is_tracking(k, drop)])
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str:
    """The lower-case hostname of url, without a leading www."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def url_key(url: str) -> str:
    """A looser key for matching URL variants: no scheme, www., trailing slash or AMP marker."""
    parts = urlsplit(normalize_url(url))
    path = parts.path.rstrip("/")
    for amp in ("/amp", ".amp"):
        if path.endswith(amp):
            path = path[: -len(amp)]
    path = path.replace("/amp/", "/")
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith(("amp=", "amp")))
    return host_of(url) + path + ("?" + query if query else "")


def article_id(url: str) -> str:
    """Stable id of the article stored under a normalized URL (16 hex digits of SHA-256)."""
    return hashlib.sha256(normalize_url(url).encode()).hexdigest()[:16]
