"""A statement's Condition block, compiled: operator → key → values, as AWS evaluates them.

Keys of a block and operators of a block are AND-ed, the values of one key OR-ed; a negated
operator (StringNotEquals …) holds when the request's value matches none of them, and when the
key is absent. `…IfExists` holds when the key is absent; `ForAnyValue:` holds when some request
value passes (never on an absent key), `ForAllValues:` when every one does (always on an absent
key). Policy values are parsed here once (CIDRs, dates, numbers, base64, wildcards).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from egide.auth.policy.errors import MalformedPolicy
from egide.auth.policy.patterns import Pattern, Values, fold_key

#: One request value against the policy's values: does it match any of them?
_Test = Callable[[str, Values], bool]
_Compiler = Callable[[list[str], bool], _Test]

Qualifier = Literal["ForAnyValue", "ForAllValues"] | None


@dataclass(frozen=True, slots=True)
class Clause:
    """One operator on one key, with its policy values compiled into `test`."""

    operator: str  # as written, for messages
    key: str  # folded
    qualifier: Qualifier
    negated: bool
    if_exists: bool
    test: _Test

    def holds(self, values: Values) -> bool:
        got = values.get(self.key)
        if not got:
            if self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.if_exists or self.negated
        test, negated = self.test, self.negated
        if self.qualifier == "ForAllValues":
            return all(test(v, values) != negated for v in got)
        if self.qualifier == "ForAnyValue":
            return any(test(v, values) != negated for v in got)
        # A plain operator: some value matches; negated, none does.
        for v in got:
            if test(v, values):
                return not negated
        return negated


@dataclass(frozen=True, slots=True)
class NullClause:
    """`Null`: "true" holds when the key is absent, "false" when it is present."""

    key: str
    absent: frozenset[bool]  # which answers to "is it absent?" hold

    def holds(self, values: Values) -> bool:
        return (not values.get(self.key)) in self.absent


@dataclass(frozen=True, slots=True)
class Condition:
    """A whole Condition block: every clause must hold."""

    clauses: tuple[Clause | NullClause, ...]

    def holds(self, values: Values) -> bool:
        return all(clause.holds(values) for clause in self.clauses)


# --- the operator families -------------------------------------------------------------------


def _strings(*, like: bool, ignore_case: bool) -> _Compiler:
    def compile_(raw: list[str], variables: bool) -> _Test:
        patterns = [
            Pattern(v, wildcards=like, variables=variables, ignore_case=ignore_case) for v in raw
        ]
        literals = [p.literal for p in patterns if p.literal is not None]
        exact = frozenset(v.casefold() for v in literals) if ignore_case else frozenset(literals)
        others = tuple(p for p in patterns if p.literal is None)

        def test(value: str, values: Values) -> bool:
            if (value.casefold() if ignore_case else value) in exact:
                return True
            return any(pattern.matches(value, values) for pattern in others)

        return test

    return compile_


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _numeric(compare: Callable[[float, float], bool]) -> _Compiler:
    def compile_(raw: list[str], variables: bool) -> _Test:
        limits = []
        for v in raw:
            number = _number(v)
            if number is None:
                raise MalformedPolicy(f"Invalid numeric value in condition: {v}")
            limits.append(number)

        def test(value: str, _values: Values) -> bool:
            got = _number(value)
            return got is not None and any(compare(got, limit) for limit in limits)

        return test

    return compile_


def _instant(text: str) -> float | None:
    """A date as AWS accepts it: ISO 8601 (UTC when no offset) or seconds since the epoch."""
    number = _number(text)
    if number is not None:
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _date(compare: Callable[[float, float], bool]) -> _Compiler:
    def compile_(raw: list[str], variables: bool) -> _Test:
        limits = []
        for v in raw:
            moment = _instant(v)
            if moment is None:
                raise MalformedPolicy(f"Invalid date value in condition: {v}")
            limits.append(moment)

        def test(value: str, _values: Values) -> bool:
            got = _instant(value)
            return got is not None and any(compare(got, limit) for limit in limits)

        return test

    return compile_


def _bool(raw: list[str], variables: bool) -> _Test:
    wanted = frozenset(v.lower() for v in raw)
    if not wanted <= {"true", "false"}:
        raise MalformedPolicy("Invalid Bool value in condition: expected true or false")
    return lambda value, _values: value.lower() in wanted


@lru_cache(maxsize=4096)
def _address(text: str) -> tuple[int, int] | None:
    """A client's address as (version, integer), parsed once for the many requests it makes."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return address.version, int(address)


def _ip(raw: list[str], variables: bool) -> _Test:
    try:
        networks = [ipaddress.ip_network(v.strip(), strict=False) for v in raw]
    except ValueError as exc:
        raise MalformedPolicy(f"Invalid IP address or CIDR in condition: {exc}") from None

    ranges = tuple((n.version, int(n.netmask), int(n.network_address)) for n in networks)

    def test(value: str, _values: Values) -> bool:
        address = _address(value)
        if address is None:
            return False
        version, number = address
        for net_version, mask, network in ranges:
            if version == net_version and number & mask == network:
                return True
        return False

    return test


def _arn(raw: list[str], variables: bool) -> _Test:
    """ArnEquals and ArnLike alike: each of the six `:`-separated parts matched on its own."""
    patterns = [
        tuple(Pattern(part, wildcards=True, variables=variables) for part in v.split(":", 5))
        for v in raw
    ]

    def test(value: str, values: Values) -> bool:
        parts = value.split(":", 5)
        return any(
            len(parts) == len(pattern)
            and all(p.matches(part, values) for p, part in zip(pattern, parts, strict=True))
            for pattern in patterns
        )

    return test


def _binary(raw: list[str], variables: bool) -> _Test:
    try:
        wanted = frozenset(base64.b64decode(v, validate=True) for v in raw)
    except binascii.Error:
        raise MalformedPolicy("Invalid base64 value in BinaryEquals condition") from None

    def test(value: str, _values: Values) -> bool:
        try:
            return base64.b64decode(value, validate=True) in wanted
        except binascii.Error:
            return False

    return test


# Base operator → (compiler, negated). Negated operators are their positive one's complement.
_OPERATORS: dict[str, tuple[_Compiler, bool]] = {
    "StringEquals": (_strings(like=False, ignore_case=False), False),
    "StringNotEquals": (_strings(like=False, ignore_case=False), True),
    "StringEqualsIgnoreCase": (_strings(like=False, ignore_case=True), False),
    "StringNotEqualsIgnoreCase": (_strings(like=False, ignore_case=True), True),
    "StringLike": (_strings(like=True, ignore_case=False), False),
    "StringNotLike": (_strings(like=True, ignore_case=False), True),
    "NumericEquals": (_numeric(operator.eq), False),
    "NumericNotEquals": (_numeric(operator.eq), True),
    "NumericLessThan": (_numeric(operator.lt), False),
    "NumericLessThanEquals": (_numeric(operator.le), False),
    "NumericGreaterThan": (_numeric(operator.gt), False),
    "NumericGreaterThanEquals": (_numeric(operator.ge), False),
    "DateEquals": (_date(operator.eq), False),
    "DateNotEquals": (_date(operator.eq), True),
    "DateLessThan": (_date(operator.lt), False),
    "DateLessThanEquals": (_date(operator.le), False),
    "DateGreaterThan": (_date(operator.gt), False),
    "DateGreaterThanEquals": (_date(operator.ge), False),
    "Bool": (_bool, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (_arn, False),
    "ArnLike": (_arn, False),
    "ArnNotEquals": (_arn, True),
    "ArnNotLike": (_arn, True),
    "BinaryEquals": (_binary, False),
}
#: Where policy variables are substituted in values (AWS: string and ARN operators).
_WITH_VARIABLES = frozenset(name for name in _OPERATORS if name.startswith(("String", "Arn")))

OPERATORS = frozenset({*_OPERATORS, "Null"})


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedPolicy("Invalid Condition value: expected a string, number or boolean")


def _condition_values(value: object) -> list[str]:
    if isinstance(value, list):
        if not value:
            raise MalformedPolicy("Invalid Condition value: empty list")
        return [_scalar(v) for v in value]
    return [_scalar(value)]


def _split_operator(name: str) -> tuple[Qualifier, str, bool]:
    qualifier: Qualifier = None
    base = name
    for prefix in ("ForAnyValue", "ForAllValues"):
        if name.startswith(prefix + ":"):
            qualifier = "ForAnyValue" if prefix == "ForAnyValue" else "ForAllValues"
            base = name[len(prefix) + 1 :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS or (base == "Null" and (if_exists or qualifier)):
        raise MalformedPolicy(f"Invalid Condition type : {name}")
    return qualifier, base, if_exists


def compile_condition(block: object, *, variables: bool) -> Condition:
    """The Condition element, validated and compiled; MalformedPolicy names what is wrong."""
    if not isinstance(block, dict):
        raise MalformedPolicy("Condition must be an object of operators")
    clauses: list[Clause | NullClause] = []
    for name, keys in block.items():
        qualifier, base, if_exists = _split_operator(name)
        if not isinstance(keys, dict) or not keys:
            raise MalformedPolicy(f"Condition operator {name} must map keys to values")
        for key, value in keys.items():
            if not isinstance(key, str) or ":" not in key.strip(":"):
                raise MalformedPolicy("Policy has an invalid condition key")
            raw = _condition_values(value)
            if base == "Null":
                answers = {v.lower() for v in raw}
                if not answers <= {"true", "false"}:
                    raise MalformedPolicy("Invalid Null value in condition: expected true or false")
                absent = frozenset(a == "true" for a in answers)
                clauses.append(NullClause(fold_key(key), absent))
                continue
            compiler, negated = _OPERATORS[base]
            test = compiler(raw, variables and base in _WITH_VARIABLES)
            clauses.append(Clause(name, fold_key(key), qualifier, negated, if_exists, test))
    return Condition(tuple(clauses))
