"""Load and validate sources.toml into a Registry: one clear ConfigError per mistake."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsflow.errors import ConfigError, InputFileError
from newsflow.settings import Settings, settings
from newsflow.types import SOURCE_KINDS, FetchSettings, Registry, Source

ENV_SOURCES = Settings.variables()["sources"]
_Fail = Callable[[str, str], ConfigError]  # (key, message) -> the error to raise
DEFAULT_RESOURCE = "data/sources.toml"

_TOP_KEYS = ("sources", "fetch")
_REQUIRED_KEYS = ("name", "publisher", "kind", "domains")
_SOURCE_KEYS = (*_REQUIRED_KEYS, "feeds", "sitemaps", "pages", "enabled", "boilerplate",
                "min_delay", "max_concurrency", "keep_blocks", "tracking_params")
_PARAM_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]]+$")  # a query parameter name, as sites spell them
# Hostnames (and IPv4 literals, which tests on 127.0.0.1 need); no scheme, port or path.
_HOST_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
# FetchSettings fields that must be > 0 (the others, counts and backoff, may be 0).
_POSITIVE_FETCH = ("connect_timeout", "read_timeout", "total_timeout", "max_bytes")


def registry_path(explicit: str | Path | None = None) -> Path:
    """The registry file to use: --sources FILE, then $NEWSFLOW_SOURCES, then the packaged one."""
    if explicit:
        return Path(explicit)
    env = settings().sources
    if env:
        return env
    return Path(str(resources.files("newsflow").joinpath(DEFAULT_RESOURCE)))


def load_registry(path: str | Path | None = None) -> Registry:
    """Read, parse and validate a registry file (see registry_path for which one)."""
    if path is None and not settings().sources:
        # Read the packaged default through importlib.resources so it works from any install.
        resource = resources.files("newsflow").joinpath(DEFAULT_RESOURCE)
        return parse_registry(resource.read_bytes(), str(registry_path(None)))
    p = registry_path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputFileError(str(p), "sources file not found") from None
    except OSError as exc:
        raise InputFileError(str(p), f"cannot read sources file: {exc.strerror or exc}") from None
    return parse_registry(data, str(p))


def parse_registry(data: bytes, path: str) -> Registry:
    """Validate the bytes of a sources.toml; `path` is only used in error messages."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise ConfigError(path, f"invalid TOML: {exc}") from None
    for key in doc:
        if key not in _TOP_KEYS:
            expected = ", ".join(_TOP_KEYS)
            raise ConfigError(path, f"unknown top-level key (expected one of: {expected})", key=key)
    raw_sources = doc.get("sources", [])
    if not isinstance(raw_sources, list) or not all(isinstance(s, dict) for s in raw_sources):
        raise ConfigError(path, "must be an array of tables, written [[sources]]", key="sources")
    sources = _parse_sources(raw_sources, path)
    fetch = _parse_fetch(doc.get("fetch", {}), path)
    return Registry(path=path, sources=sources, fetch=fetch)


def _parse_sources(raw_sources: list[dict[str, Any]], path: str) -> tuple[Source, ...]:
    sources: list[Source] = []
    seen_names: set[str] = set()
    domain_owner: dict[str, str] = {}
    for index, raw in enumerate(raw_sources):
        source = _parse_source(raw, index, path)
        if source.name in seen_names:
            raise ConfigError(path, "duplicate source name", source=source.name, key="name")
        seen_names.add(source.name)
        for domain in source.domains:
            # Two sources owning one host would make the source of a page a coin toss.
            if domain in domain_owner:
                raise ConfigError(path, f"domain {domain!r} is already listed by source "
                                  f"{domain_owner[domain]!r}", source=source.name, key="domains")
            domain_owner[domain] = source.name
        sources.append(source)
    return tuple(sources)


def _parse_source(raw: Mapping[str, Any], index: int, path: str) -> Source:
    name = raw.get("name")
    label = name if isinstance(name, str) and name.strip() else f"#{index + 1}"

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, source=label, key=key)

    for key in raw:
        if key not in _SOURCE_KEYS:
            raise fail(key, f"unknown key (expected one of: {', '.join(_SOURCE_KEYS)})")
    for key in _REQUIRED_KEYS:
        if key not in raw:
            raise fail(key, "missing required key")
    name = _string(raw, "name", fail)
    if name != name.strip():
        raise fail("name", "must not start or end with spaces")
    kind = _string(raw, "kind", fail)
    if kind not in SOURCE_KINDS:
        raise fail("kind", f"is {kind!r}; expected one of: {', '.join(SOURCE_KINDS)}")
    domains = tuple(_domain(d, fail) for d in _string_list(raw, "domains", fail))
    if not domains:
        raise fail("domains", "must list at least one hostname")
    return Source(
        name=name,
        publisher=_string(raw, "publisher", fail),
        kind=kind,  # type: ignore[arg-type]  # checked against SOURCE_KINDS above
        domains=tuple(dict.fromkeys(domains)),
        feeds=_urls(raw, "feeds", fail),
        sitemaps=_urls(raw, "sitemaps", fail),
        pages=_urls(raw, "pages", fail),
        enabled=_bool(raw, "enabled", True, fail),
        boilerplate=_patterns(raw, fail),
        keep_blocks=_keep_blocks(raw, fail),
        min_delay=_number(raw, "min_delay", 1.0, 0.0, fail),
        max_concurrency=_integer(raw, "max_concurrency", 2, 1, fail),
        tracking_params=_tracking_params(raw, fail),
    )


def _parse_fetch(raw: Any, path: str) -> FetchSettings:
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be a table, written [fetch]", key="fetch")
    defaults = FetchSettings()
    known = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(FetchSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"fetch.{key}"
        if key not in known:
            raise ConfigError(path, f"unknown key (expected one of: {', '.join(known)})", key=where)
        default = known[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
            value = float(value) if ok else value
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str) and bool(value.strip())
        if not ok:
            raise ConfigError(path, f"must be {_type_name(default)}, got {value!r}", key=where)
        if not isinstance(value, str | bool) and (
                value < 0 or (key in _POSITIVE_FETCH and value == 0)):
            raise ConfigError(path, f"must be {'> 0' if key in _POSITIVE_FETCH else '>= 0'}, "
                              f"got {value!r}", key=where)
        values[key] = value
    return FetchSettings(**values)


# Field readers: each returns the typed value or raises the ConfigError built by `fail`.

def _string(raw: Mapping[str, Any], key: str, fail: _Fail) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise fail(key, f"must be a non-empty string, got {value!r}")
    return value


def _string_list(raw: Mapping[str, Any], key: str, fail: _Fail) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, f"must be a list of strings, got {value!r}")
    return [v.strip() for v in value]


def _domain(value: str, fail: _Fail) -> str:
    host = value.lower().rstrip(".")
    if "://" in host or "/" in host:
        raise fail("domains", f"{value!r} must be a hostname, not a URL")
    host = host.removeprefix("www.")
    if not _HOST_RE.match(host):
        raise fail("domains", f"{value!r} is not a hostname (no port, path or spaces)")
    return host


def _urls(raw: Mapping[str, Any], key: str, fail: _Fail) -> tuple[str, ...]:
    urls = _string_list(raw, key, fail)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise fail(key, f"{url!r} is not an http(s) URL")
    # Feeds on feeds.example.com or a CDN are normal, so the host is NOT checked against domains.
    return tuple(dict.fromkeys(urls))


def _patterns(raw: Mapping[str, Any], fail: _Fail) -> tuple[str, ...]:
    patterns = _string_list(raw, "boilerplate", fail)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise fail("boilerplate", f"invalid regex {pattern!r}: {exc}") from None
    return tuple(patterns)


def _keep_blocks(raw: Mapping[str, Any], fail: _Fail) -> tuple[str, ...]:
    """The allow-list of learned boilerplate: regexes (case-insensitive) or plain texts."""
    entries = _string_list(raw, "keep_blocks", fail)
    for entry in entries:
        if not entry:
            raise fail("keep_blocks", "must not hold an empty string (it would keep every block)")
        try:
            re.compile(entry)
        except re.error as exc:
            raise fail("keep_blocks", f"invalid regex {entry!r}: {exc} (escape it, e.g. "
                                      "\\( for a literal parenthesis)") from None
    return tuple(entries)


def _tracking_params(raw: Mapping[str, Any], fail: _Fail) -> frozenset[str]:
    """A source's extra tracking parameter names (matched case-insensitively)."""
    names = _string_list(raw, "tracking_params", fail)
    for name in names:
        if not _PARAM_RE.match(name):
            raise fail("tracking_params", f"{name!r} is not a query parameter name (letters, "
                       "digits, _ . - [ ]; no '=', '&', '?' or spaces)")
    return frozenset(n.lower() for n in names)


def _bool(raw: Mapping[str, Any], key: str, default: bool, fail: _Fail) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise fail(key, f"must be true or false, got {value!r}")
    return value


def _number(raw: Mapping[str, Any], key: str, default: float, minimum: float, fail: _Fail) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(key, f"must be a number, got {value!r}")
    if value < minimum:
        raise fail(key, f"must be >= {minimum:g}, got {value!r}")
    return float(value)


def _integer(raw: Mapping[str, Any], key: str, default: int, minimum: int, fail: _Fail) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(key, f"must be an integer, got {value!r}")
    if value < minimum:
        raise fail(key, f"must be >= {minimum}, got {value!r}")
    return value


def _type_name(default: object) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, int):
        return "an integer"
    return "a non-empty string"
