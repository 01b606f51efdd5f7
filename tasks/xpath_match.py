"""What a translated XPath expression runs: element tests and candidate selection, in Python and C.

tasks/xpath_subset.py parses trafilatura's attribute-matching expressions into these pieces.
A translated expression is one pass over candidate elements picked in C (lxml's tag filter, or
an attribute-presence XPath without callbacks), each tested in Python with the `re` engine
lxml's `re:test` uses too; a union branch that selects by attribute alone is skipped on a page
where one search over those attributes' values rules it out. This module knows nothing of
trafilatura.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from lxml import etree

Element = Any  # an lxml element: lxml ships no type information
Predicate = Callable[[Element], bool]


def first_value(names: tuple[str, ...]) -> Callable[[Element], str]:
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
class Union(Translated):
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


def either(terms: list[Term]) -> Term:
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


def all_of(tests: Iterable[Predicate]) -> Predicate:
    """Predicates one after the other: `[a][b]`."""
    found = list(tests)
    if len(found) == 1:
        return found[0]
    if len(found) == 2:  # the usual case: no generator per element
        first, second = found
        return lambda el: first(el) and second(el)
    return lambda el: all(t(el) for t in found)


def false_on_empty(test: Callable[[str], bool], names: tuple[str, ...]) -> frozenset[str] | None:
    """The attributes a string test needs: none if it also holds for the empty string."""
    return None if test("") else frozenset(names)


@dataclass(frozen=True)
class Branch:
    """One `.//*[...]` of a union, as parsed."""

    axis: str  # './/' or '//'
    tags: list[str]  # element names it selects; none: any element
    terms: list[Term]  # its predicates, all of which must hold
    first_per_parent: bool
    first_only: bool


def gate(axis: str, probes: tuple[Probe, ...]) -> Gate:
    """One XPath for the values of all the probes' attributes, and each distinct test once."""
    names = dict.fromkeys(name for name, _, _ in probes)
    values = etree.XPath("|".join(f"{axis}*/@{name}" for name in names), smart_strings=False)
    return values, tuple({key: holds for _, key, holds in probes}.values())


class Verdicts(dict[str, bool]):
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


def on_attribute(fn: str, name: str, arg: str, test: Callable[[str], bool]) -> Predicate:
    """fn(@name, arg) as one closure (these run once per candidate element of a page)."""
    if fn == "contains":
        return lambda el: arg in el.get(name, "")
    if fn == "starts-with":
        return lambda el: el.get(name, "").startswith(arg)
    return lambda el: test(el.get(name, ""))


def candidates(axis: str, tags: list[str], terms: list[Term]) -> Callable[[Element], Iterable[Element]]:
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


def _branch_test(branch: Branch) -> Predicate:
    """Whether an element is one the branch selects (the union's candidates mix tags)."""
    preds = all_of(t.test for t in branch.terms) if branch.terms else None
    if not branch.tags:
        return preds or (lambda el: True)
    names = frozenset(branch.tags)
    if preds is None:
        return lambda el: el.tag in names
    return lambda el: el.tag in names and preds(el)


def either_branch(branches: list[Branch]) -> Predicate:
    """Whether an element is one any of the branches selects."""
    return either([Term(_branch_test(b), None) for b in branches]).test


def union_candidates(branches: list[Branch]) -> Callable[[Element], Iterable[Element]]:
    """Elements any branch could select, in one C-level pass: its names, or the attributes its
    predicates need (any element if a branch without names needs none)."""
    if all(b.tags for b in branches):
        return candidates(branches[0].axis, list(dict.fromkeys(t for b in branches for t in b.tags)), [])
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
