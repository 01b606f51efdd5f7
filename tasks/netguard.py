"""SSRF guard: only http(s) URLs whose host resolves to public addresses may be fetched.

Feeds and sitemaps are third-party input, so a URL (or a redirect) could point the fetcher at
127.0.0.1, the LAN or a cloud metadata endpoint (169.254.169.254). Every hop is checked here.
Known limit: requests resolves the host again when connecting, so a DNS answer that changes
between the check and the connect (DNS rebinding) is not caught.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from newsflow.reasons import Reason
from newsflow.settings import IPNetwork, settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def resolve(host: str) -> list[IPAddress] | None:
    """Every address host resolves to; None when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return None
    addrs: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id (fe80::1%eth0)
        try:
            addrs.append(ipaddress.ip_address(raw))
        except ValueError:
            continue
    return addrs or None


def check_url(url: str, allow_private: bool, allowed: Sequence[IPNetwork] = ()) -> Reason | None:
    """Why url must not be fetched (bad_url, bad_scheme, private_address, unresolvable), or None.

    allow_private lets every address through; `allowed` lets through only non-public addresses
    inside those networks (e.g. 127.0.0.1/32 for a local mirror, but not the metadata endpoint).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 literal)
        return Reason.BAD_URL
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return Reason.BAD_SCHEME
    if not host:
        return Reason.BAD_URL
    addrs = resolve(host)
    if addrs is None:
        return Reason.UNRESOLVABLE
    if allow_private:
        return None
    for ip in addrs:
        if not is_public(ip) and not any(ip in net for net in allowed):
            return Reason.PRIVATE_ADDRESS
    return None


def private_policy_from_env(setting: bool) -> tuple[bool, tuple[IPNetwork, ...]]:
    """(allow all, allowed networks) from the registry's setting and
    $NEWSFLOW_ALLOW_PRIVATE_NETWORKS: "1" (every private address) or the addresses/CIDRs allowed."""
    allowed = settings().allow_private_networks
    if setting or allowed is True:
        return True, ()
    return False, allowed or ()
