"""The SSRF guard: only http(s) to public addresses, unless private networks are allowed."""

from __future__ import annotations

import ipaddress

import pytest

from newsflow.errors import ConfigError
from tasks.netguard import check_url, is_public, private_policy_from_env
from tests.fetch.conftest import MakeFetcher
from tests.support.httpserver import FixtureServer

PAGE = b"<html><body>secret</body></html>"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://localhost/", "http://[::1]/",
    "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://224.0.0.1/", "http://240.0.0.1/",
    "http://[fe80::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://[::]/",
])
def test_private_addresses_refused(url: str) -> None:
    assert check_url(url, allow_private=False) == "private_address"
    assert check_url(url, allow_private=True) is None


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "https://1.1.1.1/feed", "http://[2606:4700::1111]/"])
def test_public_addresses_pass(url: str) -> None:
    assert check_url(url, allow_private=False) is None


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/", "file:///etc/passwd", "gopher://8.8.8.8/",
                                 "javascript:alert(1)", "data:text/html,hi", "//8.8.8.8/"])
def test_bad_schemes(url: str) -> None:
    assert check_url(url, allow_private=True) == "bad_scheme"


def test_unresolvable_and_malformed() -> None:
    assert check_url("http://no-such-host.invalid/", allow_private=True) == "unresolvable"
    assert check_url("http:///path-only", allow_private=True) == "bad_url"
    assert check_url("http://[::1/", allow_private=True) == "bad_url"


def test_allowed_networks_are_narrow() -> None:
    nets = (ipaddress.ip_network("127.0.0.1/32"),)
    assert check_url("http://127.0.0.1:9/", False, nets) is None
    assert check_url("http://127.0.0.2/", False, nets) == "private_address"
    assert check_url("http://169.254.169.254/", False, nets) == "private_address"


def test_is_public_unwraps_ipv4_mapped() -> None:
    assert not is_public(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert is_public(ipaddress.ip_address("::ffff:8.8.8.8"))


def test_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert private_policy_from_env(True) == (True, ())
    assert private_policy_from_env(False) == (False, ())
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "1")
    assert private_policy_from_env(False) == (True, ())
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "10.0.0.0/8, 127.0.0.1")
    allow, nets = private_policy_from_env(False)
    assert not allow
    assert [str(n) for n in nets] == ["10.0.0.0/8", "127.0.0.1/32"]
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "10.0.0.0/8, bogus")
    with pytest.raises(ConfigError, match=r"NEWSFLOW_ALLOW_PRIVATE_NETWORKS.*'bogus'"):
        private_policy_from_env(False)  # a typo fails loudly rather than narrowing the list
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "0")
    assert private_policy_from_env(False) == (False, ())


def test_fetcher_refuses_loopback_by_default(http_server: FixtureServer,
                                             make_fetcher: MakeFetcher) -> None:
    http_server.static("/internal", PAGE)
    f = make_fetcher(allow_private_networks=False).fetch(http_server.url("/internal"),
                                                          source="local").failure
    assert f is not None
    assert (f.reason, f.transient, f.attempts) == ("private_address", False, 1)
    assert http_server.requests == []  # not even robots.txt was asked for


def test_fetcher_honours_env_var(http_server: FixtureServer, make_fetcher: MakeFetcher,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.static("/internal", PAGE)
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "1")
    res = make_fetcher(allow_private_networks=False).fetch(http_server.url("/internal"),
                                                            source="local")
    assert res.page is not None and res.page.body == PAGE
