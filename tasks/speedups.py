"""Faster equivalents of three trafilatura internals, with the same output.

1. Its attribute-matching XPath expressions, run in Python. trafilatura prunes and searches
   each page with a dozen expressions of one shape,
   `.//*[self::div or self::p][re:test(@class, '...') or contains(@id, '...') or ...]`, and
   unions of them (html2txt's BASIC_CLEAN_XPATH). libxml2 calls back into Python for every
   `re:test` of every candidate element, which made these expressions the largest part of
   extract_page's CPU. Here such an expression is one pass over the candidate elements with
   Python's `re`, the engine lxml's `re:test` uses too; a union branch that selects by attribute
   alone is skipped on a page where one search over those attributes' values rules it out.
   `translate` accepts only these shapes (grammar in `_Parser`); anything else raises
   NotTranslated and stays XPath, so a trafilatura upgrade that rewrites an expression costs
   speed, not correctness.
2. Its HTML parser's element classes, looked up in C. lxml.html picks each element's Python
   class in a Python method, once per element proxy; a namespace class registry with the same
   classes does it in C.
3. Its scan of each page's HTML for characters XML forbids, before parsing: a regex character
   class over the whole page. Encoding the text and deleting control bytes in C tells the same
   faster; the regex then runs only on a page that has one.

What this saves is measured by `make bench` (docs/performance.md).
tests/extract/test_speedups.py checks each translated expression against its XPath, and
extract_page with and without, on the recorded pages. $NEWSFLOW_STOCK_TRAFILATURA=1 turns them all
off.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import lxml.html
import trafilatura.utils
import trafilatura.xpaths
from lxml import etree

Element = Any  # an lxml element: lxml ships no type information
Predicate = Callable[[Element], bool]

_TOKEN = re.compile(r"'[^']*'|\.//|//|::|\d+|[A-Za-z_][\w-]*(?::(?!:)[\w-]+)?|[\[\](),|=@*]|\S")


class NotTranslated(ValueError):
    """The expression is outside the subset translate() handles: keep it as XPath."""


def _first_value(names: tuple[str, ...]) -> Callable[[Element], str]:
    """The string value XPath gives `@a|@b`: the first of those attributes in source order."""
    if len(names) == 1:
        name = names[0]
        return lambda el: el.get(name, "")

    def value(el: Element) -> str:
        found = [v for v in map(el.get, names) if v is not None]
        if len(found) < 2:
            return found[0] if found else ""
        # keys() keeps the source order (iterating an lxml element gives its children, not keys)
        return el.get(next(k for k in el.keys() if k in names))  # noqa: SIM118

    if len(names) != 2:
        return value
    first, second = names

    def either(el: Element) -> str:  # the usual @id|@class: no list per element
        a, b = el.get(first), el.get(second)
        if b is None:
            return a or ""
        if a is None:
            return b
        return value(el)
    return either


# An attribute, a key naming the test, and the test on the attribute's values over a whole page
# joined by newlines: whether the test could hold on one of them.
Probe = tuple[str, tuple[str, str, str], Callable[[str], bool]]
# The values of some attributes over a page, and tests of which one must hold (see _possible).
Gate = tuple[etree.XPath, tuple[Callable[[str], bool], ...]]


class Term(NamedTuple):
    """One predicate test, and what rules it out without testing element by element."""

    test: Predicate
    needs: frozenset[str] | None  # false on an element with none of these (None: can hold anyway)
    probes: tuple[Probe, ...] | None = None  # false on the page if no probe holds (None: unknown)


@dataclass(frozen=True)
class Translated:
    """A callable standing in for an lxml XPath object: tree -> matching elements in document order."""

    original: etree.XPath  # what this stands in for (uninstall() puts it back)
    candidates: Callable[[Element], Iterable[Element]]  # tag and attribute tests, in C
    test: Predicate  # the rest of the predicates, in Python, on each candidate
    first_per_parent: bool  # a trailing [1]: the first match among each element's children
    first_only: bool  # (...)[1]: the first match in the document

    @property
    def path(self) -> str:
        """The XPath source, as lxml's XPath objects have it."""
        return str(self.original.path)

    def __call__(self, tree: Element) -> list[Element]:
        out = []
        parents: set[Element] = set()
        test = self.test
        for el in self.candidates(tree):
            if not test(el):
                continue
            if self.first_per_parent:
                parent = el.getparent()
                if parent in parents:
                    continue
                parents.add(parent)
            out.append(el)
            if self.first_only:
                break
        return out


@dataclass(frozen=True)
class _Union(Translated):
    """A union with branches that select by attribute alone, which it skips on a page where
    probes (one search over each attribute's values) show they cannot match: libxml2 would
    still test each element of the page, and these branches rarely match (cookie banners)."""

    gates: tuple[Gate, ...]  # one for each such branch: it can match only if its gate opens
    named: Callable[[Element], Iterable[Element]] | None  # candidates of the other branches
    named_test: Predicate

    def __call__(self, tree: Element) -> list[Element]:
        if any(_possible(tree, gate) for gate in self.gates):
            return super().__call__(tree)
        if self.named is None:
            return []
        test = self.named_test
        return [el for el in self.named(tree) if test(el)]


def _possible(tree: Element, gate: Gate) -> bool:
    """Whether one of the gate's tests holds on the page's values of its attributes."""
    values, tests = gate
    joined = "\n".join(values(tree))
    return any(holds(joined) for holds in tests)


def _either(terms: list[Term]) -> Term:
    """`a or b or ...`: needs an attribute only if every term does."""
    if len(terms) == 1:
        return terms[0]
    tests = [t.test for t in terms]

    def test(el: Element) -> bool:  # a loop: any() over a generator costs more per element
        for t in tests:  # noqa: SIM110
            if t(el):
                return True
        return False
    needs: frozenset[str] | None = frozenset()
    probes: tuple[Probe, ...] | None = ()
    for t in terms:
        needs = None if needs is None or t.needs is None else needs | t.needs
        probes = None if probes is None or t.probes is None else probes + t.probes
    return Term(test, needs, probes)


def _all(tests: Iterable[Predicate]) -> Predicate:
    """Predicates one after the other: `[a][b]`."""
    found = list(tests)
    if len(found) == 1:
        return found[0]
    if len(found) == 2:  # the usual case: no generator per element
        first, second = found
        return lambda el: first(el) and second(el)
    return lambda el: all(t(el) for t in found)


def _false_on_empty(test: Callable[[str], bool], names: tuple[str, ...]) -> frozenset[str] | None:
    """The attributes a string test needs: none if it also holds for the empty string."""
    return None if test("") else frozenset(names)


@dataclass(frozen=True)
class _Branch:
    """One `.//*[...]` of a union, as parsed."""

    axis: str  # './/' or '//'
    tags: list[str]  # element names it selects; none: any element
    terms: list[Term]  # its predicates, all of which must hold
    first_per_parent: bool
    first_only: bool


class _Parser:
    """Recursive descent over the tokens of one expression.

    union      := branch ('|' branch)*      (branches of a union: same axis, no [1])
    branch     := ['('] ('.//' | '//') ('*' | NAME) ('[' or_expr ']')* ['[1]'] [')[1]']
    or_expr    := term ('or' term)*
    term       := 'self::' NAME | 'not(' (or_expr | './/' NAME) ')' | '@' NAME ['=' STRING]
                | NAME '=' STRING
                | ('contains' | 'starts-with') '(' value ',' STRING ')'
                | 're:test(' value ',' STRING [',' STRING] ')'
    value      := attrs | 'translate(' attrs ',' STRING ',' STRING ')'
    attrs      := '@' NAME ('|' '@' NAME)*
    """

    def __init__(self, path: str) -> None:
        self.tokens = _TOKEN.findall(path)
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token != expected):
            raise NotTranslated(f"expected {expected or 'more'!r} at token {self.pos}, got {token!r}")
        self.pos += 1
        return token

    def string(self) -> str:
        token = self.take()
        if not token.startswith("'"):
            raise NotTranslated(f"expected a string literal, got {token!r}")
        return token[1:-1]

    def name(self) -> str:
        token = self.take()
        if not re.fullmatch(r"[A-Za-z_][\w-]*", token):
            raise NotTranslated(f"expected a name, got {token!r}")
        return token

    def union(self, xpath: etree.XPath) -> Translated:
        """The whole expression: one branch, or a union of unnumbered branches on one axis."""
        branches = [self.branch()]
        while self.peek() == "|":
            self.take("|")
            branches.append(self.branch())
        if self.peek():
            raise NotTranslated(f"unexpected {self.peek()!r} after the path")
        if len(branches) == 1:
            only = branches[0]
            return Translated(original=xpath, candidates=_candidates(only.axis, only.tags, only.terms),
                              test=_all(t.test for t in only.terms),
                              first_per_parent=only.first_per_parent, first_only=only.first_only)
        if any(b.first_per_parent or b.first_only or b.axis != branches[0].axis for b in branches):
            raise NotTranslated("a union of numbered branches or of different axes")
        # A union of .//X[...] branches is every element one branch matches, in document order:
        # one pass with either branch's test, as libxml2 would give after merging the branches.
        candidates, test = _union_candidates(branches), _either_branch(branches)
        named = [b for b in branches if b.tags]
        probes = [next((t.probes for t in b.terms if t.probes is not None), None)
                  for b in branches if not b.tags]
        if not probes or None in probes:
            return Translated(original=xpath, candidates=candidates, test=test,
                              first_per_parent=False, first_only=False)
        gates = tuple(_gate(branches[0].axis, p) for p in probes if p is not None)
        return _Union(original=xpath, candidates=candidates, test=test, first_per_parent=False,
                      first_only=False, gates=gates,
                      named=_union_candidates(named) if named else None,
                      named_test=_either_branch(named))

    def branch(self) -> _Branch:
        wrapped = self.peek() == "("
        if wrapped:
            self.take("(")
        axis = self.take()
        if axis not in (".//", "//"):
            raise NotTranslated("expected .//* or //*")
        tags = [] if self.peek() == "*" else [self.name()]  # .//NAME is .//*[self::NAME]
        if not tags:
            self.take("*")
        terms: list[Term] = []
        first_per_parent = False
        while self.peek() == "[" and not first_per_parent:
            self.take("[")
            if self.peek() == "1":
                self.take("1")
                first_per_parent = True
            elif not terms and not tags and self.peek() == "self":
                tags = self.tag_test()
            else:
                terms.append(self.or_expr())
            self.take("]")
        if wrapped:
            for token in (")", "[", "1", "]"):
                self.take(token)
        return _Branch(axis=axis, tags=tags, terms=terms, first_per_parent=first_per_parent,
                       first_only=wrapped)

    def tag_test(self) -> list[str]:
        """A predicate made only of self:: tests, as the element names to select."""
        tags = [self.self_name()]
        while self.peek() == "or":
            self.take("or")
            tags.append(self.self_name())
        if self.peek() != "]":
            raise NotTranslated("a leading self:: predicate mixed with other tests")
        return tags

    def self_name(self) -> str:
        self.take("self")
        self.take("::")
        return self.name()

    def or_expr(self) -> Term:
        terms = [self.term()]
        while self.peek() == "or":
            self.take("or")
            terms.append(self.term())
        return _either(terms)

    def term(self) -> Term:
        token = self.peek()
        if token == "self":
            tag = self.self_name()
            return Term(lambda el: el.tag == tag, None)
        if token == "not":
            return self.negation()
        if token == "@":
            return self.attribute_test()
        if token in ("contains", "starts-with", "re:test"):
            return self.function(self.take())
        if self.tokens[self.pos + 1:self.pos + 2] == ["="]:
            return self.child_text_test()
        raise NotTranslated(f"unsupported term {token!r}")

    def child_text_test(self) -> Term:
        """NAME='...': a child element with that name and that text (trafilatura writes
        `rel='me'`, which is this, not the attribute)."""
        name = self.name()
        self.take("=")
        wanted = self.string()
        return Term(lambda el: any("".join(c.itertext()) == wanted for c in el.iterchildren(name)),
                    None)

    def negation(self) -> Term:
        self.take("not")
        self.take("(")
        if self.peek() == ".//":
            self.take(".//")
            tag = self.name()
            self.take(")")
            return Term(lambda el: next(el.iterdescendants(tag), None) is None, None)
        inner = self.or_expr().test
        self.take(")")
        return Term(lambda el: not inner(el), None)

    def attribute_test(self) -> Term:
        self.take("@")
        name = self.name()
        if self.peek() != "=":
            return Term(lambda el: el.get(name) is not None, frozenset([name]))
        self.take("=")
        wanted = self.string()
        return Term(lambda el: el.get(name) == wanted, frozenset([name]))

    def attrs(self) -> tuple[str, ...]:
        self.take("@")
        names = [self.name()]
        while self.peek() == "|":
            self.take("|")
            self.take("@")
            names.append(self.name())
        return tuple(names)

    def value(self) -> tuple[Callable[[Element], str], tuple[str, ...]]:
        if self.peek() != "translate":
            names = self.attrs()
            return _first_value(names), names
        self.take("translate")
        self.take("(")
        names = self.attrs()
        get = _first_value(names)
        self.take(",")
        src = self.string()
        self.take(",")
        dst = self.string()
        self.take(")")
        if len(src) != len(dst):  # XPath deletes the surplus characters; str.translate does not
            raise NotTranslated("translate() with arguments of different lengths")
        table = str.maketrans(src, dst)
        return (lambda el: get(el).translate(table)), names

    def function(self, fn: str) -> Term:
        self.take("(")
        plain = self.peek() == "@"
        value, names = self.value()
        self.take(",")
        arg = self.string()
        flags = ""
        if fn == "re:test" and self.peek() == ",":
            self.take(",")
            flags = self.string()
        self.take(")")
        if fn == "contains":
            test: Callable[[str], bool] = lambda v: arg in v  # noqa: E731
        elif fn == "starts-with":
            test = lambda v: v.startswith(arg)  # noqa: E731
        elif set(flags) <= {"i"}:  # lxml's re:test: "i" ignores case ("g" means nothing to test)
            test = _Verdicts(re.compile(arg, re.IGNORECASE if flags else 0)).__getitem__
        else:
            raise NotTranslated(f"re:test flags {flags!r}")
        needs = _false_on_empty(test, names)
        if plain and len(names) == 1:  # the common case: one call per element, not three
            probes = None if needs is None else _probes(names[0], fn, arg, flags)
            return Term(_on_attribute(fn, names[0], arg, test), needs, probes)
        return Term(lambda el: test(value(el)), needs)


_LOOKAROUND = re.compile(r"\(\?<?[=!]|\\[AZ]")


def _probes(name: str, fn: str, arg: str, flags: str) -> tuple[Probe, ...] | None:
    """fn(@name, arg) as a test on many attribute values joined by newlines, true if it holds
    on any one of them (it may also hold when none does).

    A substring of a value is a substring of the joined text; a pattern matching within a value
    matches the joined text with ^ and $ at each line, unless it looks around or uses \\A \\Z.
    """
    key = (fn, arg, flags)
    if fn != "re:test":
        return ((name, key, lambda joined: arg in joined),)
    if _LOOKAROUND.search(arg):
        return None
    search = re.compile(arg, re.MULTILINE | (re.IGNORECASE if flags else 0)).search
    if not (flags and arg.isascii() and arg == arg.lower()):
        return ((name, key, lambda joined: search(joined) is not None),)
    # Ignoring case, sre scans much slower (no literal-prefix search). On ASCII text a lowercase
    # ASCII pattern matches ignoring case exactly where it matches the lowercased text.
    exact = re.compile(arg, re.MULTILINE).search
    return ((name, key,
             lambda joined: (exact(joined.lower()) if joined.isascii() else search(joined)) is not None),)


def _gate(axis: str, probes: tuple[Probe, ...]) -> Gate:
    """One XPath for the values of all the probes' attributes, and each distinct test once."""
    names = dict.fromkeys(name for name, _, _ in probes)
    values = etree.XPath("|".join(f"{axis}*/@{name}" for name in names), smart_strings=False)
    return values, tuple({key: holds for _, key, holds in probes}.values())


class _Verdicts(dict[str, bool]):
    """Whether a pattern matches each attribute value seen, remembered: a page repeats its class
    values, and a search with trafilatura's long alternations costs far more than a dict lookup.
    A value seen first is searched on the lookup itself."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.search = pattern.search

    def __missing__(self, value: str) -> bool:
        if len(self) >= _VERDICTS_MAX:  # bounded: worker processes live for a whole import
            self.clear()
        verdict = self[value] = self.search(value) is not None
        return verdict


_VERDICTS_MAX = 1000  # values per pattern: bounds the memory of a long-lived worker


def _on_attribute(fn: str, name: str, arg: str, test: Callable[[str], bool]) -> Predicate:
    """fn(@name, arg) as one closure (these run once per candidate element of a page)."""
    if fn == "contains":
        return lambda el: arg in el.get(name, "")
    if fn == "starts-with":
        return lambda el: el.get(name, "").startswith(arg)
    return lambda el: test(el.get(name, ""))


def _candidates(axis: str, tags: list[str], terms: list[Term]) -> Callable[[Element], Iterable[Element]]:
    """The elements the Python tests must see, selected in C.

    With element names, lxml's own tag filter (iter/iterdescendants) is the fastest. Without,
    an element none of whose attributes a predicate needs cannot match: an XPath made only of
    attribute-presence tests (no callbacks) skips those in libxml2, most elements of a page.
    """
    if tags:
        if axis == "//":
            return lambda tree: tree.getroottree().getroot().iter(*tags)
        return lambda tree: tree.iterdescendants(*tags)
    needs = next((t.needs for t in terms if t.needs is not None), None)
    present = "[" + " or ".join(f"@{a}" for a in sorted(needs)) + "]" if needs else ""
    return etree.XPath(f"{axis}*{present}")


def _branch_test(branch: _Branch) -> Predicate:
    """Whether an element is one the branch selects (the union's candidates mix tags)."""
    preds = _all(t.test for t in branch.terms) if branch.terms else None
    if not branch.tags:
        return preds or (lambda el: True)
    names = frozenset(branch.tags)
    if preds is None:
        return lambda el: el.tag in names
    return lambda el: el.tag in names and preds(el)


def _either_branch(branches: list[_Branch]) -> Predicate:
    """Whether an element is one any of the branches selects."""
    return _either([Term(_branch_test(b), None) for b in branches]).test


def _union_candidates(branches: list[_Branch]) -> Callable[[Element], Iterable[Element]]:
    """Elements any branch could select, in one C-level pass: its names, or the attributes its
    predicates need (any element if a branch without names needs none)."""
    if all(b.tags for b in branches):
        return _candidates(branches[0].axis, list(dict.fromkeys(t for b in branches for t in b.tags)), [])
    conditions: list[str] = []
    for b in branches:
        needs = next((t.needs for t in b.terms if t.needs is not None), None)
        if b.tags:
            conditions += [f"self::{t}" for t in b.tags]
        elif needs:
            conditions += [f"@{a}" for a in sorted(needs)]
        else:
            return etree.XPath(f"{branches[0].axis}*")
    return etree.XPath(f"{branches[0].axis}*[{' or '.join(dict.fromkeys(conditions))}]")


def translate(xpath: etree.XPath) -> Translated:
    """The Python equivalent of an lxml XPath object, or NotTranslated."""
    return _Parser(" ".join(xpath.path.split())).union(xpath)


STOCK_ENV = "NEWSFLOW_STOCK_TRAFILATURA"


def slots() -> Iterator[tuple[Any, int | str]]:
    """Where trafilatura keeps its expressions, as (holder, key): the items of trafilatura.xpaths'
    lists (its modules import the lists by name, so replacing an item reaches every caller) and
    module constants such as BASIC_CLEAN_XPATH, in each trafilatura module that imported them."""
    for value in vars(trafilatura.xpaths).values():
        if isinstance(value, list):
            yield from ((value, i) for i, x in enumerate(value) if isinstance(x, etree.XPath | Translated))
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "trafilatura":
            namespace = vars(module)
            yield from ((namespace, k) for k, x in list(namespace.items())
                        if isinstance(x, etree.XPath | Translated))


def _class_lookup() -> etree.ElementNamespaceClassLookup | None:
    """lxml.html's element classes (HtmlElement, FormElement, ...) as a C-level registry; None
    if lxml no longer keeps its tag -> class table where this reads it (a private attribute:
    trafilatura then keeps lxml.html's own lookup, slower, same classes)."""
    classes = getattr(lxml.html.HtmlElementClassLookup(), "_element_classes", None)
    if not isinstance(classes, dict):
        return None
    lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction, entity=lxml.html.HtmlEntity))
    registry = lookup.get_namespace(None)
    # The Python lookup lowercases the tag first; libxml2's HTML parser already has.
    for tag, cls in classes.items():
        registry[tag] = cls
    return lookup


class InvalidXmlChars:
    """trafilatura's INVALID_XML_CHARS (repair_faulty_html removes them before parsing) with a
    fast path for text that has none, nearly every page. Its control characters are looked for
    in its UTF-8 bytes, in one C pass (below 0x80 a UTF-8 byte only ever encodes that
    character, lone surrogates included), U+FFFE and U+FFFF in the text itself."""

    PATTERN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"  # the pattern this stands for
    _CONTROL = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

    def __init__(self, original: re.Pattern[str]):
        self.original = original
        self.pattern = original.pattern

    def absent(self, text: str) -> bool:
        """Whether text has none of the characters."""
        data = text.encode("utf-8", "surrogatepass")
        return (len(data.translate(None, self._CONTROL)) == len(data)
                and "\ufffe" not in text and "\uffff" not in text)

    def sub(self, repl: str, string: str, count: int = 0) -> str:
        if isinstance(string, str) and self.absent(string):
            return string
        return self.original.sub(repl, string, count)

    def __getattr__(self, name: str) -> Any:  # search, findall...: the pattern's own
        return getattr(self.original, name)


def worth_translating(xpath: etree.XPath) -> bool:
    """Whether the expression has what is slow in libxml2, a self:: test or a re:test; plain
    attribute comparisons (`//*[@class='post-title']`) are faster left as they are."""
    return "self::" in xpath.path or "re:test" in xpath.path


def install() -> int:
    """Put both speed-ups in place (once per process); the number of expressions translated."""
    if os.environ.get(STOCK_ENV, "").strip() not in ("", "0"):
        return 0
    done: dict[int, Any] = {}  # one translation per expression, wherever it is held
    for holder, key in slots():
        item = holder[key]
        if isinstance(item, etree.XPath) and worth_translating(item):
            if id(item) not in done:
                try:
                    done[id(item)] = translate(item)
                except NotTranslated:
                    done[id(item)] = item
            holder[key] = done[id(item)]
    if (lookup := _class_lookup()) is not None:
        trafilatura.utils.HTML_PARSER.set_element_class_lookup(lookup)
    chars = trafilatura.utils.INVALID_XML_CHARS
    if isinstance(chars, re.Pattern) and chars.pattern == InvalidXmlChars.PATTERN:
        trafilatura.utils.INVALID_XML_CHARS = InvalidXmlChars(chars)  # type: ignore[assignment]  # duck-typed: repair_faulty_html only calls .sub
    return len({id(holder[key]) for holder, key in slots() if isinstance(holder[key], Translated)})


def uninstall() -> None:
    """trafilatura as shipped again (tests and benchmarks compare both)."""
    for holder, key in slots():
        if isinstance(holder[key], Translated):
            holder[key] = holder[key].original
    trafilatura.utils.HTML_PARSER.set_element_class_lookup(lxml.html.HtmlElementClassLookup())
    if isinstance(chars := trafilatura.utils.INVALID_XML_CHARS, InvalidXmlChars):
        trafilatura.utils.INVALID_XML_CHARS = chars.original


def installed() -> bool:
    """Whether trafilatura runs with the speed-ups in this process."""
    return any(isinstance(holder[key], Translated) for holder, key in slots())
