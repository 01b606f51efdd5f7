"""The subset of XPath that trafilatura's slow expressions are written in, translated to Python.

trafilatura prunes and searches each page with a dozen expressions of one shape,
`.//*[self::div or self::p][re:test(@class, '...') or contains(@id, '...') or ...]`, and unions
of them (html2txt's BASIC_CLEAN_XPATH). libxml2 calls back into Python for every `re:test` of
every candidate element; translate() turns such an expression into the one-pass matcher of
tasks/xpath_match.py. It accepts only these shapes (grammar in `_Parser`); anything else raises
NotTranslated and stays XPath, so an upstream rewrite of an expression costs speed, not
correctness. This module knows nothing of trafilatura (tasks/trafilatura_fast.py installs it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from tasks import xpath_match as m

_TOKEN = re.compile(r"'[^']*'|\.//|//|::|\d+|[A-Za-z_][\w-]*(?::(?!:)[\w-]+)?|[\[\](),|=@*]|\S")


class NotTranslated(ValueError):
    """The expression is outside the subset translate() handles: keep it as XPath."""


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

    def union(self, xpath: etree.XPath) -> m.Translated:
        """The whole expression: one branch, or a union of unnumbered branches on one axis."""
        branches = [self.branch()]
        while self.peek() == "|":
            self.take("|")
            branches.append(self.branch())
        if self.peek():
            raise NotTranslated(f"unexpected {self.peek()!r} after the path")
        if len(branches) == 1:
            only = branches[0]
            return m.Translated(original=xpath, candidates=m.candidates(only.axis, only.tags, only.terms),
                              test=m.all_of(t.test for t in only.terms),
                              first_per_parent=only.first_per_parent, first_only=only.first_only)
        if any(b.first_per_parent or b.first_only or b.axis != branches[0].axis for b in branches):
            raise NotTranslated("a union of numbered branches or of different axes")
        # A union of .//X[...] branches is every element one branch matches, in document order:
        # one pass with either branch's test, as libxml2 would give after merging the branches.
        candidates, test = m.union_candidates(branches), m.either_branch(branches)
        named = [b for b in branches if b.tags]
        probes = [next((t.probes for t in b.terms if t.probes is not None), None)
                  for b in branches if not b.tags]
        if not probes or None in probes:
            return m.Translated(original=xpath, candidates=candidates, test=test,
                              first_per_parent=False, first_only=False)
        gates = tuple(m.gate(branches[0].axis, p) for p in probes if p is not None)
        return m.Union(original=xpath, candidates=candidates, test=test, first_per_parent=False,
                      first_only=False, gates=gates,
                      named=m.union_candidates(named) if named else None,
                      named_test=m.either_branch(named))

    def branch(self) -> m.Branch:
        wrapped = self.peek() == "("
        if wrapped:
            self.take("(")
        axis = self.take()
        if axis not in (".//", "//"):
            raise NotTranslated("expected .//* or //*")
        tags = [] if self.peek() == "*" else [self.name()]  # .//NAME is .//*[self::NAME]
        if not tags:
            self.take("*")
        terms: list[m.Term] = []
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
        return m.Branch(axis=axis, tags=tags, terms=terms, first_per_parent=first_per_parent,
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

    def or_expr(self) -> m.Term:
        terms = [self.term()]
        while self.peek() == "or":
            self.take("or")
            terms.append(self.term())
        return m.either(terms)

    def term(self) -> m.Term:
        token = self.peek()
        if token == "self":
            tag = self.self_name()
            return m.Term(lambda el: el.tag == tag, None)
        if token == "not":
            return self.negation()
        if token == "@":
            return self.attribute_test()
        if token in ("contains", "starts-with", "re:test"):
            return self.function(self.take())
        if self.tokens[self.pos + 1:self.pos + 2] == ["="]:
            return self.child_text_test()
        raise NotTranslated(f"unsupported term {token!r}")

    def child_text_test(self) -> m.Term:
        """NAME='...': a child element with that name and that text (trafilatura writes
        `rel='me'`, which is this, not the attribute)."""
        name = self.name()
        self.take("=")
        wanted = self.string()
        return m.Term(lambda el: any("".join(c.itertext()) == wanted for c in el.iterchildren(name)),
                    None)

    def negation(self) -> m.Term:
        self.take("not")
        self.take("(")
        if self.peek() == ".//":
            self.take(".//")
            tag = self.name()
            self.take(")")
            return m.Term(lambda el: next(el.iterdescendants(tag), None) is None, None)
        inner = self.or_expr().test
        self.take(")")
        return m.Term(lambda el: not inner(el), None)

    def attribute_test(self) -> m.Term:
        self.take("@")
        name = self.name()
        if self.peek() != "=":
            return m.Term(lambda el: el.get(name) is not None, frozenset([name]))
        self.take("=")
        wanted = self.string()
        return m.Term(lambda el: el.get(name) == wanted, frozenset([name]))

    def attrs(self) -> tuple[str, ...]:
        self.take("@")
        names = [self.name()]
        while self.peek() == "|":
            self.take("|")
            self.take("@")
            names.append(self.name())
        return tuple(names)

    def value(self) -> tuple[Callable[[m.Element], str], tuple[str, ...]]:
        if self.peek() != "translate":
            names = self.attrs()
            return m.first_value(names), names
        self.take("translate")
        self.take("(")
        names = self.attrs()
        get = m.first_value(names)
        self.take(",")
        src = self.string()
        self.take(",")
        dst = self.string()
        self.take(")")
        if len(src) != len(dst):  # XPath deletes the surplus characters; str.translate does not
            raise NotTranslated("translate() with arguments of different lengths")
        table = str.maketrans(src, dst)
        return (lambda el: get(el).translate(table)), names

    def function(self, fn: str) -> m.Term:
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
            test = m.Verdicts(re.compile(arg, re.IGNORECASE if flags else 0)).__getitem__
        else:
            raise NotTranslated(f"re:test flags {flags!r}")
        needs = m.false_on_empty(test, names)
        if plain and len(names) == 1:  # the common case: one call per element, not three
            probes = None if needs is None else _probes(names[0], fn, arg, flags)
            return m.Term(m.on_attribute(fn, names[0], arg, test), needs, probes)
        return m.Term(lambda el: test(value(el)), needs)


_LOOKAROUND = re.compile(r"\(\?<?[=!]|\\[AZ]")


def _probes(name: str, fn: str, arg: str, flags: str) -> tuple[m.Probe, ...] | None:
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


def translate(xpath: etree.XPath) -> m.Translated:
    """The Python equivalent of an lxml XPath object, or NotTranslated."""
    return _Parser(" ".join(xpath.path.split())).union(xpath)



def worth_translating(xpath: etree.XPath) -> bool:
    """Whether the expression has what is slow in libxml2, a self:: test or a re:test; plain
    attribute comparisons (`//*[@class='post-title']`) are faster left as they are."""
    return "self::" in xpath.path or "re:test" in xpath.path
