"""The docs name only what exists: CLI commands and options, make targets, repo files, Python
names, DuckDB views and columns, and the SQL they show runs on a freshly migrated database."""

from __future__ import annotations

import importlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer

from newsflow.cli import app
from newsflow.reasons import Reason, is_reason
from newsflow.settings import Settings
from storage.db import writer

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
REQUIRED_DOCS = ("orchestration.md", "dedupe.md", "fetching-and-failures.md", "performance.md",
                 "scaling.md", "settings.md")
CONTRACT_VIEWS = ("articles", "stories", "story_members", "source_health")
PACKAGES = ("newsflow", "tasks", "flows", "storage")
FILE_EXTS = (".py", ".md", ".toml", ".yaml", ".yml", ".sh", ".tsv")
SHELL_BLOCKS = ("", "sh", "bash", "console")
SKIP_DIRS = {".git", ".venv", "build", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_NEWSFLOW = re.compile(r"(?:^|[\s;(])(?:\.venv/bin/)?newsflow[ \t]+([a-z][\w-]*.*)$", re.M)
_MAKE = re.compile(r"(?:^|[\s;(])make[ \t]+([a-z][\w-]*)")
_VIEW_DEF = re.compile(r"^\*\*`(\w+)`\*\*: (.+?)(?:\n\n|\Z)", re.M | re.S)
_DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+$")
_QUALIFIED = re.compile(r"^([a-z_]+)\.([a-z_]+)$")
_PATHLIKE = re.compile(r"^[\w.\-/]+$")
_SETTING_ROW = re.compile(r"^\| `(NEWSFLOW_\w+)` \| `(\w+)` \|", re.M)
_REASON_ROW = re.compile(r"^\| (`[^|]+) \| [^|]+ \| ([^|]+) \|", re.M)


@dataclass(frozen=True)
class Doc:
    """One markdown file split into what the checks read."""

    path: Path
    text: str
    blocks: list[tuple[str, str]]  # (language, body) of each fenced block
    spans: list[str]  # inline code outside fenced blocks

    @classmethod
    def read(cls, path: Path, text: str | None = None) -> Doc:
        text = path.read_text(encoding="utf-8") if text is None else text
        blocks = [(m[1], m[2]) for m in _FENCE.finditer(text)]
        return cls(path=path, text=text, blocks=blocks, spans=_SPAN.findall(_FENCE.sub("", text)))

    def code(self) -> Iterator[str]:
        """Every command line the doc shows: shell blocks without comments, and inline spans."""
        for lang, body in self.blocks:
            if lang in SHELL_BLOCKS:
                yield from (re.split(r"(?:^|\s)#", line, maxsplit=1)[0] for line in body.splitlines())
        yield from self.spans


def _cli() -> Any:
    """The CLI as a command group (typer's own click: commands by name, each with its params)."""
    group = typer.main.get_command(app)
    assert "run" in getattr(group, "commands", {})
    return group


def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")


def check_commands(doc: Doc, group: Any) -> list[str]:
    """`newsflow CMD [--option ...]`: the command exists, and so does every option it is given."""
    problems = []
    for line in doc.code():
        for m in _NEWSFLOW.finditer(line):
            try:
                words = shlex.split(m[1], comments=True)
            except ValueError:
                words = m[1].split()
            cmd = group
            for i, word in enumerate(words):
                if not _is_group(cmd):
                    break
                sub = cmd.commands.get(word)
                if sub is None:
                    problems.append(f"{doc.path.name}: `newsflow {' '.join(words[:i + 1])}`: no such command")
                    break
                cmd = sub
            else:
                continue
            if _is_group(cmd):
                continue
            opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
            for word in words:
                flag = word.split("=", 1)[0]
                if flag.startswith("-") and flag not in opts:
                    problems.append(f"{doc.path.name}: `newsflow {cmd.name} {flag}`: no such option")
    return problems


def make_targets() -> set[str]:
    """The targets the Makefile defines."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m[1] for m in re.finditer(r"^([a-z][\w-]*):", text, re.M)}


def check_make(doc: Doc, targets: set[str]) -> list[str]:
    """`make TARGET`: the Makefile has it."""
    return [f"{doc.path.name}: `make {t}`: no such target"
            for line in doc.code() for t in _MAKE.findall(line) if t not in targets]


def repo_files() -> tuple[set[str], set[str]]:
    """(relative paths of files and folders, file names) of the checkout, caches left out."""
    paths, names = set(), set()
    stack = [REPO]
    while stack:
        folder = stack.pop()
        for p in folder.iterdir():
            if p.name in SKIP_DIRS or p.name.endswith(".egg-info"):
                continue
            rel = p.relative_to(REPO).as_posix()
            paths.add(rel)
            if p.is_dir():
                stack.append(p)
            else:
                names.add(p.name)
    return paths, names


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def check_files(doc: Doc, paths: set[str], names: set[str]) -> list[str]:
    """Repo paths in inline code, and relative links (with their #anchors) between the docs."""
    problems = []
    top = {p for p in paths if "/" not in p}
    for span in doc.spans:
        candidate = re.sub(r"(::\w+|:\d+)$", "", span.strip())
        if not _PATHLIKE.match(candidate) or candidate.startswith(".."):
            continue
        if "/" in candidate:
            if candidate.split("/")[0] in top and candidate.rstrip("/") not in paths:
                problems.append(f"{doc.path.name}: `{span}`: no such file in the repo")
        elif candidate.endswith(FILE_EXTS) and candidate not in names:
            problems.append(f"{doc.path.name}: `{span}`: no file of that name in the repo")
    for target in _LINK.findall(doc.text):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        file, _, anchor = target.partition("#")
        dest = (doc.path.parent / file).resolve() if file else doc.path
        if not dest.exists():
            problems.append(f"{doc.path.name}: link ({target}): no such file")
        elif anchor and dest.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)
            if anchor not in {_slug(h) for h in headings}:
                problems.append(f"{doc.path.name}: link ({target}): no such heading")
    return problems


def _resolves(dotted: str) -> bool:
    """Whether a dotted name is an importable module, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def check_python_names(doc: Doc) -> list[str]:
    """`tasks.extract.page_metadata` and the like: the module and attribute exist."""
    return [f"{doc.path.name}: `{s}`: no such module or attribute"
            for s in doc.spans if _DOTTED.match(s) and not _resolves(s)]


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str] | None:
    try:
        cur = con.execute(f'SELECT * FROM "{relation}" LIMIT 0')
    except duckdb.CatalogException:
        return None
    return [d[0] for d in cur.description or []]


def check_views(doc: Doc, con: duckdb.DuckDBPyConnection) -> list[str]:
    """**`view`**: `col`, ... lists every column of the view, in order; `table.column` exists."""
    problems = []
    for m in _VIEW_DEF.finditer(doc.text):
        documented = _SPAN.findall(m[2])
        actual = _columns(con, m[1])
        if actual is None:
            problems.append(f"{doc.path.name}: view `{m[1]}` does not exist")
        elif documented != actual:
            problems.append(f"{doc.path.name}: view `{m[1]}` documented as {documented}, is {actual}")
    for span in doc.spans:
        q = _QUALIFIED.match(span)
        if q is None or span.endswith(FILE_EXTS):
            continue
        cols = _columns(con, q[1])
        if cols is not None and q[2] not in cols:
            problems.append(f"{doc.path.name}: `{span}`: {q[1]} has no column {q[2]}")
    return problems


def doc_queries(doc: Doc) -> Iterator[str]:
    """SQL the doc shows: statements of ```sql blocks and the query of each `newsflow sql`."""
    for lang, body in doc.blocks:
        if lang == "sql":
            plain = "\n".join(line.split("--")[0] for line in body.splitlines())
            yield from (s.strip() for s in plain.split(";") if s.strip())
    for line in doc.code():
        for m in _NEWSFLOW.finditer(line):
            try:
                words = shlex.split(m[1], comments=True)
            except ValueError:
                continue
            if len(words) > 1 and words[0] == "sql":
                yield words[1]


def check_sql(doc: Doc, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every query the doc shows runs on a freshly migrated database."""
    problems = []
    for query in doc_queries(doc):
        try:
            con.execute(query).fetchall()
        except duckdb.Error as exc:
            problems.append(f"{doc.path.name}: query {query!r} fails: {exc}")
    return problems


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new database with every migration applied, as the product creates it."""
    path = tmp_path_factory.mktemp("docs") / "news.duckdb"
    with writer(path):
        pass
    db = duckdb.connect(str(path), read_only=True)
    yield db
    db.close()


def _all(check: str, *args: object) -> list[str]:
    fn = globals()[check]
    return [p for path in DOCS for p in fn(Doc.read(path), *args)]


def test_the_docs_exist_and_the_readme_is_short() -> None:
    assert [d for d in REQUIRED_DOCS if not (REPO / "docs" / d).is_file()] == []
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    assert [i + 1 for i, line in enumerate(lines) if len(line) > 110] == []


def test_documented_commands_and_options_exist() -> None:
    assert _all("check_commands", _cli()) == []


def test_documented_make_targets_exist() -> None:
    assert _all("check_make", make_targets()) == []


def test_documented_files_and_links_exist() -> None:
    assert _all("check_files", *repo_files()) == []


def test_documented_python_names_exist() -> None:
    assert _all("check_python_names") == []


def test_documented_views_columns_and_queries_exist(con: duckdb.DuckDBPyConnection) -> None:
    assert _all("check_views", con) + _all("check_sql", con) == []
    readme = Doc.read(REPO / "README.md")
    assert [m[1] for m in _VIEW_DEF.finditer(readme.text)] == list(CONTRACT_VIEWS)


def settings_table(doc: Doc) -> dict[str, str]:
    """The rows of the settings table: each variable's Settings field, by variable."""
    return {m[1]: m[2] for m in _SETTING_ROW.finditer(doc.text)}


def test_the_settings_table_lists_exactly_the_settings() -> None:
    documented = settings_table(Doc.read(REPO / "docs" / "settings.md"))
    assert documented == {env: name for name, env in Settings.variables().items()}
    assert len(documented) >= 10
    assert [p.name for p in DOCS if p.name != "settings.md" and settings_table(Doc.read(p))] == []


def test_no_reference_to_a_missing_markdown_file() -> None:
    """`.md` names anywhere in the repo (code, config, docs) point at files that exist."""
    paths, names = repo_files()
    problems = []
    for rel in sorted(paths):
        path = REPO / rel
        if (path.is_dir() or path.suffix not in (*FILE_EXTS, "") or rel.startswith("tests/data/")
                or path == Path(__file__)):  # this file names missing ones on purpose
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for ref in set(re.findall(r"(?<![\w/.-])((?:\.\./)?[\w.-]+(?:/[\w.-]+)*\.md)\b", text)):
            if ref.startswith("../"):
                problems.append(f"{rel}: {ref} is outside the repo")
            elif ("/" in ref and ref not in paths and not (path.parent / ref).exists()) or (
                    "/" not in ref and ref not in names):
                problems.append(f"{rel}: {ref} does not exist")
    assert problems == []


def test_the_product_never_reads_the_shared_folder() -> None:
    """Only bench/ and tests/ may use ../shared (the corpus); the product and its docs stand alone."""
    hits = [p.relative_to(REPO).as_posix() for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")
            if re.search(r"\.\./shared|PREFECT-NOTES", p.read_text(encoding="utf-8"))]
    hits += [p.name for p in DOCS if "PREFECT-NOTES" in p.read_text(encoding="utf-8")]
    assert hits == []


def test_the_checks_catch_what_does_not_exist(con: duckdb.DuckDBPyConnection) -> None:
    """A doc naming things that do not exist fails every check (the checks are not vacuous)."""
    bad = Doc.read(REPO / "docs" / "bad.md", "\n".join([
        "Run `newsflow no-such-command` or `newsflow run --no-such-option`.",
        "```sh", "make no-such-target", "newsflow sql \"SELECT nope FROM articles\"", "```",
        "See `tasks/no_such_file.py`, `no_such_doc.md`, [x](missing.md), [y](dedupe.md#no-heading),",
        "`tasks.extract.no_such_function` and `articles.no_such_column`.",
        "", "**`stories`**: `story_id`", "",
        "**`no_such_view`**: `a`", "",
    ]))
    assert len(check_commands(bad, _cli())) == 2
    assert len(check_make(bad, make_targets())) == 1
    assert len(check_files(bad, *repo_files())) == 4
    assert len(check_python_names(bad)) == 1
    assert len(check_views(bad, con)) == 3
    assert len(check_sql(bad, con)) == 1
    good = Doc.read(REPO / "README.md")
    assert sum(1 for line in good.code() for _ in _NEWSFLOW.finditer(line)) >= 8
    assert len(list(doc_queries(good))) >= 3


def check_reasons(text: str) -> list[str]:
    """The failure reasons table lists every Reason, each with its transient column right."""
    section = text.split("## Failure reasons", 1)[-1].split("\n## ", 1)[0]
    problems, seen = [], set()
    for m in _REASON_ROW.finditer(section):
        transient = "yes" in m[2]
        for label in _SPAN.findall(m[1]):
            seen.add(label)
            if label.startswith("http_"):
                continue
            if not is_reason(label):
                problems.append(f"`{label}`: no such Reason")
            elif Reason(label).transient != transient:
                problems.append(f"`{label}`: transient is {Reason(label).transient}")
    problems += [f"`{r}`: not in the table" for r in [*Reason, "http_NNN"] if r not in seen]
    return problems


def test_documented_failure_reasons_are_the_enum() -> None:
    doc = REPO / "docs" / "fetching-and-failures.md"
    assert check_reasons(doc.read_text(encoding="utf-8")) == []
    bad = "\n".join(["## Failure reasons", "| reason | stage | transient | meaning |",
                     "|---|---|---|---|", "| `timeout` | fetch | no | x |",
                     "| `no_such_reason` | fetch | no | x |"])
    problems = check_reasons(bad)
    assert "`timeout`: transient is True" in problems and "`no_such_reason`: no such Reason" in problems
    assert "`http_NNN`: not in the table" in problems and "`not_xml`: not in the table" in problems
