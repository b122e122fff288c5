"""Kubernetes label selectors in their text form (`kubectl -l`): `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`,
`a` and `!a`, joined by commas. Semantics are apimachinery's `labels.Parse`: `!=` and `notin` also match objects without
the key, `=` and `in` need it. The `<`/`>` comparisons (for numeric values, hardly used with labels) are not supported.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_KEY_NAME = re.compile(_NAME)
_VALUE = re.compile(f"({_NAME})?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CHUNK = re.compile(r"[^,(]+|\([^)]*\)?|,")  # a comma, a parenthesised list (maybe unclosed), or text between
_WORD = r"[^\s!=(),]+"
_SET_TERM = re.compile(rf"(?P<negated>!?)\s*(?P<key>{_WORD})\s+(?P<operator>in|notin)\s*\((?P<values>[^()]*)\)")
_EQUALITY_TERM = re.compile(rf"(?P<key>{_WORD})\s*(?P<operator>==|!=|=)\s*(?P<value>{_WORD}|)")
_EXISTS_TERM = re.compile(rf"(?P<negated>!?)\s*(?P<key>{_WORD})")
_MISSING_LIST = re.compile(rf"{_WORD}\s+(?P<operator>in|notin)\b.*")
_LABEL_SYNTAX = "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


class Operator(enum.Enum):
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    IN = "in"
    NOT_IN = "notin"


@dataclass(frozen=True)
class Requirement:
    """One term. `a=b` is `a in (b)` and `a!=b` is `a notin (b)`: the same test, so the same canonical text."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Lists filter thousands of objects per request: the cheapest test first, one dict lookup each.
        if self.operator is Operator.IN:
            return labels.get(self.key) in self.values
        if self.operator is Operator.NOT_IN:
            return labels.get(self.key) not in self.values
        return (self.key in labels) is (self.operator is Operator.EXISTS)

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if len(self.values) == 1:
            return f"{self.key}{'=' if self.operator is Operator.IN else '!='}{next(iter(self.values))}"
        return f"{self.key} {self.operator.value} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """All of its requirements (none: everything). Sorted and without duplicates, so equal selectors compare equal."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for requirement in self.requirements:  # noqa: SIM110 - a plain loop is measurably faster than all()
            if not requirement.matches(labels):
                return False
        return True

    def __str__(self) -> str:
        """Canonical text, the same for every spelling of the same selector: a key for caches and page tokens."""
        return ",".join(str(requirement) for requirement in self.requirements)


EVERYTHING = Selector()


MAX_TEXT = 4096
MAX_REQUIREMENTS = 50
"""Bounds on a selector from a client: each Wukong is tested against every requirement, on the event loop."""


def parse(text: str) -> Selector:
    """Raises ValueError naming the first bad term and what was expected there, or the bound a selector exceeds."""
    if not text.strip():
        return EVERYTHING
    if len(text) > MAX_TEXT:
        raise ValueError(f"is {len(text)} characters long; at most {MAX_TEXT}")
    terms = _terms(text)
    if len(terms) > MAX_REQUIREMENTS:
        raise ValueError(f"has {len(terms)} requirements; at most {MAX_REQUIREMENTS}")
    requirements = {_requirement(term.strip(), text) for term in terms}
    return Selector(tuple(sorted(requirements, key=lambda r: (r.key, str(r)))))


def check_label_key(key: str) -> str | None:
    """What is wrong with a label key (`app`, `example.com/tier`), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"label key '{key}': the prefix before '/' must be a DNS subdomain such as example.com"
    if len(name) > 63 or not _KEY_NAME.fullmatch(name):
        return f"label key '{key}' must be {_LABEL_SYNTAX}, optionally after a DNS subdomain and '/'"
    return None


def check_label_value(value: str) -> str | None:
    """What is wrong with a label value (which may be empty), or None."""
    if len(value) > 63 or not _VALUE.fullmatch(value):
        return f"label value '{value}' must be empty or {_LABEL_SYNTAX}"
    return None


def _terms(text: str) -> list[str]:
    """Splits at the commas outside parentheses, in linear time (the text comes from clients)."""
    terms: list[str] = []
    current = ""
    for chunk in _CHUNK.findall(text):
        if chunk == ",":
            terms.append(current)
            current = ""
        else:
            current += chunk
    terms.append(current)
    return terms


def _requirement(term: str, text: str) -> Requirement:
    if not term:
        raise ValueError(f"'{text}': empty term; separate terms with single commas, e.g. env=prod,tier!=db")
    if match := _SET_TERM.fullmatch(term):
        if match["negated"]:
            raise ValueError(f"'{term}': '!' only negates a bare key, e.g. !legacy")
        values = frozenset(value.strip() for value in match["values"].split(","))
        return Requirement(_key(term, match["key"]), Operator(match["operator"]), _values(term, values))
    if match := _EQUALITY_TERM.fullmatch(term):
        operator = Operator.NOT_IN if match["operator"] == "!=" else Operator.IN
        return Requirement(_key(term, match["key"]), operator, _values(term, frozenset({match["value"]})))
    if match := _EXISTS_TERM.fullmatch(term):
        operator = Operator.DOES_NOT_EXIST if match["negated"] else Operator.EXISTS
        return Requirement(_key(term, match["key"]), operator)
    if match := _MISSING_LIST.fullmatch(term):
        word = match["operator"]
        raise ValueError(
            f"'{term}': expected a parenthesised list of values after '{word}', e.g. env {word} (prod,staging)"
        )
    raise ValueError(
        f"'{term}': expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key, e.g. env=prod"
    )


def _key(term: str, key: str) -> str:
    problem = check_label_key(key)
    if problem:
        raise ValueError(f"'{term}': {problem}")
    return key


def _values(term: str, values: frozenset[str]) -> frozenset[str]:
    for value in sorted(values):
        problem = check_label_value(value)
        if problem:
            raise ValueError(f"'{term}': {problem}")
    return values
