"""A channel's `postgres_changes` bindings: parsed as Realtime parses them, matched per change.

A binding is `{event, schema, table, filter}`: event `*`, INSERT, UPDATE or DELETE; schema
`public` when only a table is named; table `*` for every published table of the schema; filter
`column=op.value` (several joined by commas are ANDed), op one of eq, neq, lt, lte, gt, gte, in
(`in.(a,b,c)`), like, ilike, match, imatch (POSIX regex), is (`null`, `true`, `false`,
`unknown`) and isdistinct (NULL-safe inequality), each optionally negated with `not.`, as
Realtime's `subscriptions.ex` parses them and its `realtime.check_equality_op` applies them; a
value in double quotes is unquoted (`\\"` for a quote). `select` (a list of columns) narrows
what the binding's changes carry to those columns and the primary key. The join reply echoes
each binding with an `id` (Realtime's `:erlang.phash2(params)`, here a CRC of the same params
in the same range).

Filters are evaluated on the typed record (the JSON values Realtime sends): numbers compare as
numbers, booleans as booleans, timestamps and dates as moments, everything else as text. An
INSERT or UPDATE is filtered on its new record, a DELETE on its old one; a column the record
lacks fails the filter, and so does a NULL value, except for `is` and `isdistinct` (SQL's
comparisons with NULL are NULL, which Realtime counts as not passing, negated or not).
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Binding", "BindingError", "Filter", "parse_binding"]

OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "match", "imatch", "is",
       "isdistinct")  # fmt: skip
IS_VALUES = ("null", "true", "false", "unknown")
_PATTERNS = {"like": 0, "ilike": re.IGNORECASE, "match": 0, "imatch": re.IGNORECASE}
EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
_FILTER = re.compile(r"^([^=]+)=(not\.)?([a-z]+)\.(.*)$", re.DOTALL)
_NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric", "oid"}
_TIMES = {"timestamptz", "timestamp", "date"}


class BindingError(ValueError):
    """The binding's params are not ones Realtime accepts; the text is Realtime's."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: str
    negate: bool = False

    def passes(self, record: dict[str, Any], types: dict[str, str]) -> bool:
        if self.column not in record:
            return False
        kind = types.get(self.column, "text")
        value = record[self.column]
        if self.op in ("is", "isdistinct"):
            return _null_safe(self.op, value, self.value, kind) != self.negate
        if value is None:
            return False
        actual = _typed(value, kind)
        if self.op in _PATTERNS:
            result = _pattern_matches(self.op, str(value), self.value)
        elif self.op == "in":
            wanted = [_typed(v, kind) for v in _split_list(self.value)]
            result = actual in wanted
        else:
            expected = _typed(self.value, kind)
            try:
                result = _compare(self.op, actual, expected)
            except TypeError:
                result = False
        return result != self.negate


@dataclass(frozen=True)
class Binding:
    event: str
    schema: str
    table: str
    filters: tuple[Filter, ...]
    params: dict[str, Any]
    select: tuple[str, ...] | None = None
    """The columns asked for (`select`); the primary key comes too. None: every column."""

    @property
    def id(self) -> int:
        text = json.dumps(self.params, sort_keys=True, separators=(",", ":"))
        return zlib.crc32(text.encode()) % (1 << 27)

    def reply(self) -> dict[str, Any]:
        """The binding as the join reply echoes it."""
        return {**self.params, "id": self.id}

    def wants(self, op: str, schema: str, table: str) -> bool:
        return (
            self.event in ("*", op) and self.schema in ("*", schema) and self.table in ("*", table)
        )

    def passes(self, record: dict[str, Any], types: dict[str, str]) -> bool:
        return all(f.passes(record, types) for f in self.filters)


def parse_binding(params: Any) -> Binding:
    """The binding of one `postgres_changes` entry of a join's config."""
    if not isinstance(params, dict):
        raise BindingError("No subscription params provided. Please provide at least a `schema`"
                           f" or `table` to subscribe to: {params!r}")  # fmt: skip
    event = str(params.get("event", "*")).upper()
    event = event if event in EVENTS else "*"
    schema, table, filter_ = params.get("schema"), params.get("table"), params.get("filter")
    if isinstance(schema, str) and isinstance(table, str):
        pass
    elif isinstance(schema, str) and table is None and filter_ is None:
        table = "*"
    elif isinstance(table, str) and schema is None and filter_ is None:
        schema = "public"
    else:
        raise BindingError("No subscription params provided. Please provide at least a `schema`"
                           f" or `table` to subscribe to: {_shown(params)}")  # fmt: skip
    filters: tuple[Filter, ...] = ()
    if filter_ is not None:
        if not isinstance(filter_, str):
            raise BindingError(f"Error parsing `filter` params: {filter_!r}")
        filters = _parse_filters(filter_)
    select = _select(params.get("select"))
    if select is not None and "*" in (schema, table):
        raise BindingError("Column selection is not supported for wildcard subscriptions."
                           " Provide an explicit schema and table name.")  # fmt: skip
    return Binding(event, schema, table, filters, dict(params), select)


def _select(columns: Any) -> tuple[str, ...] | None:
    """`select`: a list of column names (its non-strings ignored, none at all: every column)."""
    if columns is None:
        return None
    if not isinstance(columns, list):
        raise BindingError("Error parsing `select` params: expected a list of column name"
                           ' strings, e.g. select: ["col1", "col2"]')  # fmt: skip
    names = tuple(c for c in columns if isinstance(c, str))
    return names or None


def _shown(params: dict[str, Any]) -> str:
    if "user_token" in params or "auth_token" in params:
        return "<redacted>"
    return json.dumps(params)


def _parse_filters(text: str) -> tuple[Filter, ...]:
    if not text.strip():
        return ()
    filters = []
    for part in _split_top_level(text.strip()):
        match = _FILTER.match(part)
        if match is None or match.group(3) not in OPS:
            pieces = part.split("=", 1)[-1].split(".", 1)
            raise BindingError(f"Error parsing `filter` params: {json.dumps(pieces)}")
        column, negate, op, value = match.groups()
        if op == "in" and not (value.startswith("(") and value.endswith(")")):
            raise BindingError(f"Error parsing `filter` params: {json.dumps([op, value])}")
        if op == "is" and value not in IS_VALUES:
            raise BindingError("invalid value for is filter: must be null, true, false, or unknown")
        if op == "in":
            filters.append(Filter(column.strip(), op, value, negate is not None))
        else:
            filters.append(Filter(column.strip(), op, _unquoted(value), negate is not None))
    return tuple(filters)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _split_list(value: str) -> list[str]:
    inner = value[1:-1]
    return [item.strip().strip('"') for item in _split_top_level(inner) if item.strip()]


def _typed(value: Any, kind: str) -> Any:
    if kind in _NUMERIC:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return str(value)
    if kind == "bool":
        text = str(value).lower()
        return text in ("true", "t", "1", "yes", "on")
    if kind in _TIMES:
        return _moment(str(value), kind)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value).lower() if kind == "uuid" else str(value)


def _moment(text: str, kind: str) -> Any:
    """A timestamp or date as Postgres reads it (`2026-01-01 10:00:00+00`, ISO with `Z`);
    text that is not one stays text (and compares with nothing else)."""
    try:
        if kind == "date":
            return date.fromisoformat(text[:10])
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return text
    if kind == "timestamptz" and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the server's zone is UTC here
    return moment


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return bool(a == b)
    if op == "neq":
        return bool(a != b)
    if op == "lt":
        return bool(a < b)
    if op == "lte":
        return bool(a <= b)
    if op == "gt":
        return bool(a > b)
    return bool(a >= b)


def _unquoted(value: str) -> str:
    """`"a, b"` → `a, b` (a backslash keeps the next character); anything else as it is."""
    if len(value) < 2 or not value.startswith('"') or not value.endswith('"'):
        return value
    out, escaped = [], False
    for char in value[1:-1]:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return value  # an unescaped quote inside: not one quoted value
        else:
            out.append(char)
    return value if escaped else "".join(out)


def _null_safe(op: str, value: Any, wanted: str, kind: str) -> bool:
    """`IS null|true|false|unknown` and `IS DISTINCT FROM`, which never give NULL."""
    if op == "is":
        if wanted in ("null", "unknown"):
            return value is None
        return value is not None and _typed(value, "bool") == (wanted == "true")
    if value is None:
        return True  # NULL is distinct from any value written in a filter
    return bool(_typed(value, kind) != _typed(wanted, kind))


def _pattern_matches(op: str, text: str, pattern: str) -> bool:
    """LIKE / ILIKE (`%`, `_`, backslash escapes) or a POSIX regex (`~`, `~*`)."""
    flags = _PATTERNS[op]
    if op in ("match", "imatch"):
        try:
            return re.search(pattern, text, flags) is not None
        except re.error:
            return False
    regex, escaped = [], False
    for char in pattern:
        if escaped:
            regex.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    return re.fullmatch("".join(regex), text, flags | re.DOTALL) is not None
