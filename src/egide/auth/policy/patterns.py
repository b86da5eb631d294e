"""Wildcards, policy variables and the request's condition values, shared by every element.

A pattern (a Resource, an ArnLike or StringLike value) is translated to a regular expression once;
one that holds policy variables (`${aws:username}`) keeps its parts and is resolved per request,
the substituted value matched literally, the resulting expression cached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

#: What a condition reads: key → one value or several (aws:SourceIp, s3:prefix, aws:TagKeys …).
ContextMapping = Mapping[str, "str | Sequence[str]"]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_REFERENCE = re.compile(r"^\s*([^,\s']+)\s*(?:,\s*'([^']*)'\s*)?$")
#: `${*}`, `${?}`, `${$}`: the character itself, never a wildcard nor the start of a variable.
_ESCAPES = frozenset("*?$")


@lru_cache(maxsize=4096)
def fold_key(key: str) -> str:
    """Condition key names are case-insensitive; a tag key after the `/` keeps its case.
    Cached: the same few dozen keys come with every request."""
    name, slash, rest = key.partition("/")
    return name.lower() + slash + rest


class Values:
    """The request's condition values, looked up by key whatever its case."""

    __slots__ = ("_values",)

    def __init__(self, mapping: ContextMapping) -> None:
        self._values: dict[str, tuple[str, ...]] = {
            fold_key(key): (value,) if isinstance(value, str) else tuple(value)
            for key, value in mapping.items()
        }

    def get(self, folded_key: str) -> tuple[str, ...]:
        """The values of a key already folded (empty when the request has none)."""
        return self._values.get(folded_key, ())

    def single(self, folded_key: str) -> str | None:
        """The value a policy variable stands for: single-valued keys only."""
        got = self._values.get(folded_key, ())
        return got[0] if len(got) == 1 else None


def as_values(context: ContextMapping | Values) -> Values:
    return context if isinstance(context, Values) else Values(context)


def _glob_regex(text: str) -> str:
    """`*` any run of characters (`/` included, as AWS), `?` one character, the rest literal."""
    return re.escape(text).replace(r"\*", ".*").replace(r"\?", ".")


@dataclass(frozen=True)
class _Variable:
    key: str  # folded
    default: str | None


_Part = str | _Variable


@lru_cache(maxsize=4096)
def _compiled(expression: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(expression, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


class Pattern:
    """A value of a policy: literal or with `*`/`?` wildcards, with policy variables or not."""

    __slots__ = (
        "_escapes",
        "_fragments",
        "_ignore_case",
        "_parts",
        "_source",
        "_wildcards",
        "literal",
        "text",
    )

    def __init__(
        self, text: str, *, wildcards: bool, variables: bool, ignore_case: bool = False
    ) -> None:
        self.text = text
        self._wildcards = wildcards
        self._ignore_case = ignore_case
        self._escapes = variables  # `${*}` … mean something only where variables do
        parts = _split(text) if variables else (text,)
        self._parts: tuple[_Part, ...] = parts
        #: The parts with their literal text already translated into regular expressions.
        self._fragments: tuple[_Part, ...] = tuple(
            _escaped_text(p, wildcards, self._escapes) if isinstance(p, str) else p for p in parts
        )
        #: The literal value when there is neither a variable nor a wildcard in it.
        self.literal: str | None = None
        #: The expression of a pattern without variables (compiled when first matched).
        self._source: str | None = None
        if all(isinstance(p, str) for p in parts):
            plain = "".join(p for p in parts if isinstance(p, str))
            if not wildcards or not any(c in plain for c in "*?"):
                self.literal = plain if not variables else _unescape(plain)
            self._source = "".join(f for f in self._fragments if isinstance(f, str))

    @property
    def has_variables(self) -> bool:
        return self._source is None

    @property
    def regex_source(self) -> str:
        """The expression of a pattern without variables (to join several into one)."""
        assert self._source is not None
        return self._source

    def prefix(self) -> str:
        """The literal text before the first wildcard or variable (to check a bucket policy)."""
        first = self._parts[0] if self._parts else ""
        if not isinstance(first, str):
            return ""
        cut = len(first)
        if self._wildcards:
            cut = min((i for i, c in enumerate(first) if c in "*?"), default=cut)
        return first[:cut]

    def matches(self, value: str, values: Values) -> bool:
        if self._source is not None:
            return _compiled(self._source, self._ignore_case).fullmatch(value) is not None
        expression = self._expression(values)
        if expression is None:
            return False
        return _compiled(expression, self._ignore_case).fullmatch(value) is not None

    def resolve(self, values: Values) -> str | None:
        """The value with its variables substituted (None when one has no value)."""
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(_unescape(part) if self._escapes else part)
                continue
            got = values.single(part.key)
            if got is None:
                got = part.default
            if got is None:
                return None
            out.append(got)
        return "".join(out)

    def _expression(self, values: Values) -> str | None:
        out: list[str] = []
        for part in self._fragments:
            if isinstance(part, str):
                out.append(part)
                continue
            got = values.single(part.key)
            if got is None:
                got = part.default
            if got is None:
                return None  # AWS: a variable without a value makes the element not match
            out.append(re.escape(got))
        return "".join(out)


def _escaped_text(text: str, wildcards: bool, escapes: bool) -> str:
    """Literal text with its `${*}`-style escapes, wildcards translated when they are ones."""
    if not escapes:
        return _glob_regex(text) if wildcards else re.escape(text)
    out: list[str] = []
    for piece in re.split(r"(\$\{[*?$]\})", text):
        if len(piece) == 4 and piece.startswith("${") and piece[2] in _ESCAPES:
            out.append(re.escape(piece[2]))
        else:
            out.append(_glob_regex(piece) if wildcards else re.escape(piece))
    return "".join(out)


def _unescape(text: str) -> str:
    for c in _ESCAPES:
        text = text.replace("${" + c + "}", c)
    return text


def _split(text: str) -> tuple[_Part, ...]:
    """Literal runs (escapes kept for later) and variables, in order."""
    parts: list[_Part] = []
    literal: list[str] = []
    pos = 0
    for found in _VARIABLE.finditer(text):
        literal.append(text[pos : found.start()])
        inner = found.group(1)
        reference = _REFERENCE.match(inner)
        if inner in _ESCAPES or reference is None:
            literal.append(found.group(0))  # an escape, or not a variable: literal text
        else:
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Variable(fold_key(reference.group(1)), reference.group(2)))
        pos = found.end()
    literal.append(text[pos:])
    tail = "".join(literal)
    if tail or not parts:
        parts.append(tail)
    return tuple(parts)
