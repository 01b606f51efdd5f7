"""sources.toml loading: the packaged default, overrides, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsflow.config import ENV_SOURCES, load_registry, registry_path
from newsflow.errors import ConfigError, InputFileError
from newsflow.types import FetchSettings

GOOD = """
[fetch]
read_timeout = 3
allow_private_networks = true

[[sources]]
name = "alpha"
publisher = "Alpha Media"
kind = "original"
domains = ["WWW.Alpha.example", "alpha-news.example."]
feeds = ["https://feeds.cdn.example/alpha.xml"]
sitemaps = ["https://alpha.example/news-sitemap.xml"]
pages = ["https://alpha.example/news/"]
boilerplate = ['^Subscribe now!$']
min_delay = 0
max_concurrency = 4

[[sources]]
name = "beta"
publisher = "Beta"
kind = "aggregator"
domains = ["beta.example"]
enabled = false
"""

SOURCE_HEAD = '[[sources]]\nname = "{name}"\npublisher = "P"\nkind = "original"\n'


def write(tmp_path: Path, text: str, name: str = "sources.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_registry_loads_with_the_nexstar_sources() -> None:
    registry = load_registry()
    assert registry.path.endswith("sources.toml")
    hill = registry.get("thehill")
    assert hill is not None and hill.kind == "original" and hill.publisher == "Nexstar Media"
    assert hill.matches_host("www.thehill.com")
    stations = [s for s in registry.sources if s.kind == "syndicator"]
    assert len(stations) >= 5
    assert all(s.publisher == "Nexstar Media" and s.feeds for s in stations)
    kxan = registry.source_for_host("www.kxan.com")
    assert kxan is not None and kxan.kind == "syndicator"
    vigour = registry.source_for_host("vigourtimes.com")
    assert vigour is not None and vigour.kind == "aggregator"
    assert vigour.publisher == "Vigour Times"
    assert registry.fetch == FetchSettings()  # the [fetch] table restates the defaults


def test_good_file_is_parsed_and_normalized(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    alpha = registry.get("alpha")
    assert alpha is not None
    assert alpha.domains == ("alpha.example", "alpha-news.example")
    assert alpha.feeds == ("https://feeds.cdn.example/alpha.xml",)  # off-domain feed is fine
    assert alpha.min_delay == 0.0 and isinstance(alpha.min_delay, float)
    assert alpha.max_concurrency == 4
    assert alpha.boilerplate == ("^Subscribe now!$",)
    assert [s.name for s in registry.enabled()] == ["alpha"]
    beta = registry.get("beta")
    assert beta is not None and beta.min_delay == 1.0 and beta.max_concurrency == 2
    assert registry.fetch.read_timeout == 3.0 and registry.fetch.allow_private_networks
    assert registry.fetch.connect_timeout == FetchSettings().connect_timeout


def test_explicit_path_beats_env_which_beats_default(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = write(tmp_path, SOURCE_HEAD.format(name="from-env") + 'domains = ["e.example"]\n',
                     "env.toml")
    cli_file = write(tmp_path, SOURCE_HEAD.format(name="from-cli") + 'domains = ["c.example"]\n',
                     "cli.toml")
    monkeypatch.delenv(ENV_SOURCES, raising=False)
    assert registry_path(None).name == "sources.toml"
    assert load_registry().get("thehill") is not None
    monkeypatch.setenv(ENV_SOURCES, str(env_file))
    assert registry_path(None) == env_file
    assert [s.name for s in load_registry().sources] == ["from-env"]
    assert registry_path(str(cli_file)) == cli_file
    assert [s.name for s in load_registry(str(cli_file)).sources] == ["from-cli"]


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        load_registry(tmp_path / "nope.toml")


BAD_SOURCES = [
    # (body after the [[sources]] head of a source named "s1", key at fault, words in message)
    ('domains = ["a.example"]\ncolour = "red"\n', "colour", "unknown key"),
    ('domains = ["a.example"]\nenabled = "yes"\n', "enabled", "true or false"),
    ('domains = "a.example"\n', "domains", "list of strings"),
    ("domains = []\n", "domains", "at least one"),
    ('domains = ["https://a.example/"]\n', "domains", "not a URL"),
    ('domains = ["a.example:8080"]\n', "domains", "not a hostname"),
    ('domains = ["a.example"]\nfeeds = ["ftp://a.example/feed"]\n', "feeds", "http(s)"),
    ('domains = ["a.example"]\nsitemaps = ["/sitemap.xml"]\n', "sitemaps", "http(s)"),
    ('domains = ["a.example"]\npages = [1]\n', "pages", "list of strings"),
    ('domains = ["a.example"]\nboilerplate = ["(unclosed"]\n', "boilerplate", "invalid regex"),
    ('domains = ["a.example"]\nmin_delay = -1\n', "min_delay", ">= 0"),
    ('domains = ["a.example"]\nmin_delay = "1s"\n', "min_delay", "number"),
    ('domains = ["a.example"]\nmax_concurrency = 0\n', "max_concurrency", ">= 1"),
    ('domains = ["a.example"]\nmax_concurrency = 1.5\n', "max_concurrency", "integer"),
]


@pytest.mark.parametrize(("body", "key", "words"), BAD_SOURCES,
                         ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(BAD_SOURCES)])
def test_bad_source_names_file_source_and_key(tmp_path: Path, body: str, key: str,
                                              words: str) -> None:
    path = write(tmp_path, SOURCE_HEAD.format(name="s1") + body)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    err = info.value
    assert (err.path, err.source, err.key) == (str(path), "s1", key)
    message = str(err)
    assert str(path) in message and "'s1'" in message and f"'{key}'" in message
    assert words in message


def test_bad_kind(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "s1"\npublisher = "P"\nkind = "blog"\ndomains = ["a.example"]\n'
    with pytest.raises(ConfigError, match=r"source 's1': key 'kind': is 'blog'; expected one of"):
        load_registry(write(tmp_path, text))


def test_missing_required_key_names_the_source_by_index(tmp_path: Path) -> None:
    text = (SOURCE_HEAD.format(name="ok") + 'domains = ["a.example"]\n'
            '[[sources]]\npublisher = "P"\nkind = "original"\ndomains = ["b.example"]\n')
    with pytest.raises(ConfigError) as info:
        load_registry(write(tmp_path, text))
    assert (info.value.source, info.value.key) == ("#2", "name")
    assert "missing required key" in str(info.value)


def test_duplicate_names_and_domains(tmp_path: Path) -> None:
    dup_name = (SOURCE_HEAD.format(name="s1") + 'domains = ["a.example"]\n'
                + SOURCE_HEAD.format(name="s1") + 'domains = ["b.example"]\n')
    with pytest.raises(ConfigError, match="duplicate source name") as info:
        load_registry(write(tmp_path, dup_name))
    assert (info.value.source, info.value.key) == ("s1", "name")
    dup_domain = (SOURCE_HEAD.format(name="s1") + 'domains = ["a.example"]\n'
                  + SOURCE_HEAD.format(name="s2") + 'domains = ["www.a.example"]\n')
    with pytest.raises(ConfigError, match="already listed by source 's1'") as info:
        load_registry(write(tmp_path, dup_domain, "dup2.toml"))
    assert (info.value.source, info.value.key) == ("s2", "domains")


def test_invalid_toml_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sources]]\nname = "s1"\npublisher = \n')
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "invalid TOML" in message and "line 3" in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(SOURCE_HEAD.format(name="caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_registry(path)


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[fetch]\nspeed = 3\n', "fetch.speed", "unknown key"),
    ('[fetch]\nread_timeout = "fast"\n', "fetch.read_timeout", "a number"),
    ('[fetch]\nread_timeout = 0\n', "fetch.read_timeout", "> 0"),
    ('[fetch]\nretries = -1\n', "fetch.retries", ">= 0"),
    ('[fetch]\nretries = 2.5\n', "fetch.retries", "an integer"),
    ('[fetch]\nobey_robots = 1\n', "fetch.obey_robots", "true or false"),
    ('[fetch]\nuser_agent = ""\n', "fetch.user_agent", "non-empty string"),
    ('fetch = 3\n', "fetch", "must be a table"),
    ('[sources]\nname = "x"\n', "sources", "[[sources]]"),
    ('[extra]\nx = 1\n', "extra", "unknown top-level key"),
])
def test_bad_fetch_and_top_level(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    assert info.value.key == key and info.value.source is None
    assert str(path) in str(info.value) and words in str(info.value)
