"""S3 Select's SQL, translated to DuckDB's over one object (SelectObjectContent).

The subset AWS documents for S3 Select: `SELECT <projection> FROM S3Object [alias] [WHERE
<condition>] [LIMIT n]`, with `*`, columns by name (`s.name`, `name`, `"Name"`) or position
(`_1`, `s._2`), arithmetic, comparisons, AND/OR/NOT, LIKE, BETWEEN, IN, IS [NOT] NULL, CASE,
CAST (INT, INTEGER, FLOAT, DECIMAL, STRING, BOOL, TIMESTAMP …), the aggregates COUNT, SUM,
AVG, MIN, MAX and a few scalar functions. Anything else is refused with AWS's codes:
`UnsupportedSqlOperation` (joins, GROUP BY, ORDER BY, subqueries, unknown functions …),
`ParseUnexpectedToken` / `ParseExpectedKeyword` (not that shape at all).

The translation is token by token: every identifier becomes a quoted column name, every
function and type is checked against a list, so nothing but a column, a literal or a listed
function reaches DuckDB; the source (`read_csv(...)` of the one object) is put in by the
caller in place of `S3Object`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s+|(?P<string>'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")*")|(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|<>|!=|\|\||[-+*/%=<>(),.\[\]])"""
)
_KEYWORDS = {
    "AND", "OR", "NOT", "IS", "NULL", "LIKE", "ESCAPE", "BETWEEN", "IN", "AS", "TRUE", "FALSE",
    "CASE", "WHEN", "THEN", "ELSE", "END", "MISSING",
}  # fmt: skip
_FUNCTIONS = {
    "COUNT", "SUM", "AVG", "MIN", "MAX", "CAST", "COALESCE", "NULLIF", "LOWER", "UPPER",
    "TRIM", "CHAR_LENGTH", "CHARACTER_LENGTH", "SUBSTRING", "ABS",
}  # fmt: skip
_TYPES = {
    "INT": "BIGINT", "INTEGER": "BIGINT", "BIGINT": "BIGINT", "SMALLINT": "BIGINT",
    "FLOAT": "DOUBLE", "DOUBLE": "DOUBLE", "REAL": "DOUBLE", "DECIMAL": "DECIMAL(38, 9)",
    "NUMERIC": "DECIMAL(38, 9)", "STRING": "VARCHAR", "VARCHAR": "VARCHAR", "CHAR": "VARCHAR",
    "BOOL": "BOOLEAN", "BOOLEAN": "BOOLEAN", "TIMESTAMP": "TIMESTAMP",
}  # fmt: skip
_UNSUPPORTED = {
    "JOIN", "GROUP", "ORDER", "HAVING", "UNION", "INTERSECT", "EXCEPT", "WITH", "OFFSET",
    "DISTINCT", "OVER", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "COPY", "ATTACH",
    "PRAGMA", "SET", "INSTALL", "LOAD", "CALL", "DESCRIBE", "EXPLAIN",
}  # fmt: skip
#: The name the caller replaces with the object's source.
SOURCE = "__s3object"


class SelectSqlError(Exception):
    """A query S3 Select refuses: AWS's code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True)
class Translated:
    sql: str
    #: The highest `_N` the query names (headerless CSV columns are named _1 … _N).
    positions: int


def _tokens(expression: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        found = _TOKEN.match(expression, position)
        if found is None:
            raise SelectSqlError(
                "ParseUnexpectedToken", f"unexpected character at {position}: "
                f"{expression[position:position + 10]!r}"
            )  # fmt: skip
        position = found.end()
        if found.lastgroup is not None:
            out.append((found.lastgroup, found.group()))
    return out


def translate(expression: str) -> Translated:
    tokens = _tokens(expression)
    if not tokens or tokens[0][1].upper() != "SELECT":
        first = tokens[0][1] if tokens else ""
        code = (
            "UnsupportedSqlOperation" if first.upper() in _UNSUPPORTED else "ParseExpectedKeyword"
        )
        raise SelectSqlError(code, f"a query starts with SELECT, not {first!r}")
    words = [value.upper() for kind, value in tokens if kind == "word"]
    for word in words:
        if word in _UNSUPPORTED:
            raise SelectSqlError("UnsupportedSqlOperation", f"{word} is not supported")
    if words.count("SELECT") > 1:
        raise SelectSqlError("UnsupportedSqlOperation", "subqueries are not supported")
    # FROM S3Object[[*]] [[AS] alias], at depth 0.
    depth, start = 0, None
    for index, (kind, value) in enumerate(tokens):
        depth += value == "("
        depth -= value == ")"
        if kind == "word" and value.upper() == "FROM" and depth == 0:
            start = index
            break
    if start is None or start + 1 >= len(tokens) or tokens[start + 1][1].upper() != "S3OBJECT":
        raise SelectSqlError("ParseExpectedKeyword", "the query must read FROM S3Object")
    after = start + 2
    if tokens[after : after + 3] == [("op", "["), ("op", "*"), ("op", "]")]:
        after += 3
    elif after < len(tokens) and tokens[after][1] in ("[", "."):
        raise SelectSqlError("UnsupportedSqlOperation", "paths into S3Object are not supported")
    alias = None
    if after < len(tokens) and tokens[after][1].upper() == "AS":
        after += 1
    if after < len(tokens) and tokens[after][0] in ("word", "quoted"):
        candidate = tokens[after][1]
        if candidate.upper() not in ("WHERE", "LIMIT"):
            alias, after = candidate.strip('"').lower(), after + 1
    projection = _rewrite(tokens[1:start], alias)
    rest = tokens[after:]
    tail: list[str] = []
    if rest and rest[0][1].upper() == "WHERE":
        limit_at = next(
            (i for i, (k, v) in enumerate(rest) if k == "word" and v.upper() == "LIMIT"), len(rest)
        )
        tail += ["WHERE", *_rewrite(rest[1:limit_at], alias).parts]
        rest = rest[limit_at:]
    if rest and rest[0][1].upper() == "LIMIT":
        if len(rest) != 2 or rest[1][0] != "number" or not rest[1][1].isdigit():
            raise SelectSqlError("ParseUnexpectedToken", "LIMIT takes a whole number")
        tail += ["LIMIT", rest[1][1]]
        rest = []
    if rest:
        raise SelectSqlError("ParseUnexpectedToken", f"unexpected {rest[0][1]!r}")
    if not projection.parts:
        raise SelectSqlError("ParseExpectedKeyword", "SELECT names nothing")
    where_positions = _positions(tail)
    sql = " ".join(["SELECT", *projection.parts, "FROM", SOURCE, *tail])
    return Translated(sql, max(projection.positions, where_positions))


@dataclass
class _Rewritten:
    parts: list[str]
    positions: int


def _positions(parts: list[str]) -> int:
    found = [int(p[2:-1]) for p in parts if re.fullmatch(r'"_\d+"', p)]
    return max(found, default=0)


def _column(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rewrite(tokens: list[tuple[str, str]], alias: str | None) -> _Rewritten:
    parts: list[str] = []
    index = 0
    in_cast = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else None
        upper = value.upper()
        if kind == "word" and following == "(":
            if upper not in _FUNCTIONS:
                raise SelectSqlError(
                    "UnsupportedSqlOperation", f"the function {value} is not supported"
                )
            in_cast += upper == "CAST"
            parts.append(upper)
        elif kind == "word" and upper == "AS" and in_cast:
            parts.append("AS")
            type_name = tokens[index + 1][1].upper() if following else ""
            if type_name not in _TYPES:
                raise SelectSqlError(
                    "UnsupportedSqlOperation", f"CAST to {type_name} is not supported"
                )
            parts.append(_TYPES[type_name])
            in_cast -= 1
            index += 2
            continue
        elif kind in ("word", "quoted") and following == ".":
            qualifier = value.strip('"').lower()
            if alias is None or qualifier not in (alias, "s3object"):
                raise SelectSqlError("ParseUnexpectedToken", f"unknown table {value}")
            index += 2
            continue
        elif kind == "word" and upper == "MISSING":
            parts.append("NULL")
        elif kind == "word" and upper in _KEYWORDS:
            parts.append(upper)
        elif kind == "word":
            parts.append(_column(value))
        elif kind == "quoted":
            parts.append(_column(value[1:-1].replace('""', '"')))
        elif kind == "op" and value in ("[", "]"):
            raise SelectSqlError("UnsupportedSqlOperation", "paths are not supported")
        else:
            parts.append(value)
        index += 1
    return _Rewritten(parts, _positions(parts))
