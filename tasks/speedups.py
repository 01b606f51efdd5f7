"""Faster equivalents of two trafilatura internals: the same output, ~20-25% less CPU a page.

1. Its attribute-matching XPath expressions, run in Python. trafilatura prunes and searches
   each page with a dozen expressions of one shape,
   `.//*[self::div or self::p][re:test(@class, '...') or contains(@id, '...') or ...]`.
   libxml2 calls back into Python for every `re:test` of every candidate element: those
   expressions were ~40% of extract_page's CPU (5.3 of 13.1 ms a page, 316 corpus pages). Here
   such an expression is one pass over the candidate elements with Python's `re`, the engine
   lxml's `re:test` uses too. `translate` accepts only that shape (grammar in `_Parser`);
   anything else raises NotTranslated and stays XPath, so a trafilatura upgrade that rewrites
   an expression into another shape costs speed, not correctness.
2. Its HTML parser's element classes, looked up in C. lxml.html picks each element's Python
   class in a Python method, once per element proxy (~1M times for 316 pages); a namespace
   class registry with the same classes does it in C.

Measured on the 316 corpus pages, one process: extract_page 16.9 -> 12.9 ms a page, output
identical on every page (`make bench` reports about the same ratio on the bench WARC's pages).
tests/extract/test_speedups.py checks each translated expression against its XPath, and
extract_page with and without, on the recorded pages. $NEWSFLOW_STOCK_TRAFILATURA=1 turns both
off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

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


# A test and the attributes it needs: it is false on an element that has none of them (None:
# it can hold without any attribute, e.g. not(...)).
Term = tuple[Predicate, frozenset[str] | None]


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


def _either(terms: list[Term]) -> Term:
    """`a or b or ...`: needs an attribute only if every term does."""
    if len(terms) == 1:
        return terms[0]
    tests = [t for t, _ in terms]

    def test(el: Element) -> bool:  # a loop: any() over a generator costs more per element
        for t in tests:  # noqa: SIM110
            if t(el):
                return True
        return False
    needs = [n for _, n in terms]
    return test, (None if None in needs else frozenset().union(*needs))  # type: ignore[arg-type]


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


class _Parser:
    """Recursive descent over the tokens of one expression.

    path       := ['('] ('.//*' | '//*') ('[' or_expr ']')* ['[1]'] [')[1]']
    or_expr    := term ('or' term)*
    term       := 'self::' NAME | 'not(' (or_expr | './/' NAME) ')' | '@' NAME ['=' STRING]
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

    def path(self, xpath: etree.XPath) -> Translated:
        wrapped = self.peek() == "("
        if wrapped:
            self.take("(")
        axis = self.take()
        if axis not in (".//", "//"):
            raise NotTranslated("expected .//* or //*")
        self.take("*")
        tags: list[str] = []
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
        if self.peek():
            raise NotTranslated(f"unexpected {self.peek()!r} after the path")
        return Translated(original=xpath, candidates=_candidates(axis, tags, terms),
                          test=_all(t for t, _ in terms),
                          first_per_parent=first_per_parent, first_only=wrapped)

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
            return (lambda el: el.tag == tag), None
        if token == "not":
            return self.negation()
        if token == "@":
            return self.attribute_test()
        if token in ("contains", "starts-with", "re:test"):
            return self.function(self.take())
        raise NotTranslated(f"unsupported term {token!r}")

    def negation(self) -> Term:
        self.take("not")
        self.take("(")
        if self.peek() == ".//":
            self.take(".//")
            tag = self.name()
            self.take(")")
            return (lambda el: next(el.iterdescendants(tag), None) is None), None
        inner, _ = self.or_expr()
        self.take(")")
        return (lambda el: not inner(el)), None

    def attribute_test(self) -> Term:
        self.take("@")
        name = self.name()
        if self.peek() != "=":
            return (lambda el: el.get(name) is not None), frozenset([name])
        self.take("=")
        wanted = self.string()
        return (lambda el: el.get(name) == wanted), frozenset([name])

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
            search = re.compile(arg, re.IGNORECASE if flags else 0).search
            test = lambda v: search(v) is not None  # noqa: E731
        else:
            raise NotTranslated(f"re:test flags {flags!r}")
        needs = _false_on_empty(test, names)
        if plain and len(names) == 1:  # the common case: one call per element, not three
            return _on_attribute(fn, names[0], arg, test), needs
        return (lambda el: test(value(el))), needs


def _on_attribute(fn: str, name: str, arg: str, test: Callable[[str], bool]) -> Predicate:
    """fn(@name, arg) as one closure (these run ~1,000 times a page each)."""
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
    needs = next((n for _, n in terms if n is not None), None)
    present = "[" + " or ".join(f"@{a}" for a in sorted(needs)) + "]" if needs else ""
    return etree.XPath(f"{axis}*{present}")


def translate(xpath: etree.XPath) -> Translated:
    """The Python equivalent of an lxml XPath object, or NotTranslated."""
    return _Parser(" ".join(xpath.path.split())).path(xpath)


STOCK_ENV = "NEWSFLOW_STOCK_TRAFILATURA"


def _expression_lists() -> Iterator[list[Any]]:
    """trafilatura's lists of XPath expressions: its modules import the lists themselves by
    name, so replacing a list's items reaches every caller."""
    for value in vars(trafilatura.xpaths).values():
        if isinstance(value, list) and any(isinstance(x, etree.XPath | Translated) for x in value):
            yield value


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


def worth_translating(xpath: etree.XPath) -> bool:
    """Whether the expression has what is slow in libxml2, a self:: test or a re:test; plain
    attribute comparisons (`//*[@class='post-title']`) are faster left as they are."""
    return "self::" in xpath.path or "re:test" in xpath.path


def install() -> int:
    """Put both speed-ups in place (once per process); the number of expressions translated."""
    if os.environ.get(STOCK_ENV, "").strip() not in ("", "0"):
        return 0
    count = 0
    for expressions in _expression_lists():
        for i, item in enumerate(expressions):
            if isinstance(item, etree.XPath) and worth_translating(item):
                try:
                    expressions[i] = translate(item)
                except NotTranslated:
                    continue
            count += isinstance(expressions[i], Translated)
    if (lookup := _class_lookup()) is not None:
        trafilatura.utils.HTML_PARSER.set_element_class_lookup(lookup)
    return count


def uninstall() -> None:
    """trafilatura as shipped again (tests and benchmarks compare both)."""
    for expressions in _expression_lists():
        for i, item in enumerate(expressions):
            if isinstance(item, Translated):
                expressions[i] = item.original
    trafilatura.utils.HTML_PARSER.set_element_class_lookup(lxml.html.HtmlElementClassLookup())


def installed() -> bool:
    """Whether trafilatura runs with the speed-ups in this process."""
    return any(isinstance(x, Translated) for xs in _expression_lists() for x in xs)
