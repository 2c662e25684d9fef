"""Keyset cursors: round trips, refusals that are 422s without leaking, ranges and pages."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from uuid import UUID

import pytest

from shared.errors import ValidationFailed
from shared.pagination import KeysetSort, _fingerprint, decode_cursor, encode_cursor, page

SCOPE = {"project_id": "p1", "status": ["done", "todo"], "sort": "-created_at"}
ID = "0b7c1e7e-8a51-4d5b-9c8e-2f1d6c1a9e11"


def forge(payload: Any) -> str:
    """A cursor holding any JSON, built the way encode_cursor builds one."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refused(
    cursor: str, scope: Any = SCOPE, types: tuple[type, ...] = (str, str)
) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(cursor, scope, types)
    return raised.value


def assert_clean_422(error: ValidationFailed, *secrets: str) -> None:
    assert error.status == 422 and error.code == "VALIDATION_FAILED"
    assert error.message == "The cursor is not valid for this query"
    assert error.details == [
        {
            "loc": ["query", "cursor"],
            "type": "cursor_invalid",
            "message": "Use next_cursor from the previous page of the same query",
        }
    ]
    # raised `from None`: no chained exception carries the decoded text into a log
    assert error.__cause__ is None and error.__suppress_context__
    text = json.dumps([error.message, error.details])
    for secret in secrets:
        assert secret not in text


# ---- encode_cursor / decode_cursor -----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "types"),
    [
        (["2024-05-01T10:00:00+00:00", ID], (str, str)),
        ([3, ID], (int, str)),
        ([None, ID], (str, str)),
        (["caf\u00e9 \U0001f600", ID], (str, str)),
        ([], ()),
    ],
)
def test_a_cursor_round_trips(values: list[Any], types: tuple[type, ...]) -> None:
    cursor = encode_cursor(SCOPE, values)
    assert decode_cursor(cursor, SCOPE, types) == values


def test_a_cursor_is_url_safe_and_unpadded() -> None:
    for n in range(6):  # every padding length
        cursor = encode_cursor(SCOPE, ["x" * n, ID])
        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert decode_cursor(cursor, SCOPE, (str, str)) == ["x" * n, ID]


def test_the_scope_binds_regardless_of_key_order() -> None:
    cursor = encode_cursor({"a": 1, "b": [1, 2]}, ["v"])
    assert decode_cursor(cursor, {"b": [1, 2], "a": 1}, (str,)) == ["v"]


@pytest.mark.parametrize(
    "other",
    [
        {**SCOPE, "project_id": "p2"},
        {**SCOPE, "sort": "created_at"},
        {**SCOPE, "status": ["todo", "done"]},  # lists are ordered: callers sort them first
        {k: v for k, v in SCOPE.items() if k != "status"},
        None,
    ],
)
def test_a_cursor_from_another_query_is_refused(other: Any) -> None:
    cursor = encode_cursor(SCOPE, ["2024-05-01", ID])
    assert_clean_422(refused(cursor, scope=other), "2024-05-01", ID)


def test_a_tampered_fingerprint_is_refused() -> None:
    fingerprint = _fingerprint(SCOPE)
    flipped = ("0" if fingerprint[0] != "0" else "1") + fingerprint[1:]
    assert_clean_422(refused(forge([flipped, ["v", ID]])))


def test_values_are_not_signed_only_type_checked() -> None:
    # documented: anyone may build a cursor; it only says where a page starts
    forged = forge([_fingerprint(SCOPE), ["1999-01-01", ID]])
    assert decode_cursor(forged, SCOPE, (str, str)) == ["1999-01-01", ID]


@pytest.mark.parametrize(
    ("values", "types"),
    [
        ([1, ID], (str, str)),  # wrong type
        (["1", ID], (int, str)),
        ([1.5, ID], (int, str)),
        ([["nested"], ID], (str, str)),
        ([{"k": "v"}, ID], (str, str)),
        (["a"], (str, str)),  # too few
        (["a", ID, "extra"], (str, str)),  # too many
        ("not-a-list", (str, str)),
        ({"0": "a", "1": ID}, (str, str)),
        (["a\u0000b", ID], (str, str)),  # NUL: Postgres text cannot hold it
        (["\ud800", ID], (str, str)),  # a lone surrogate: not encodable as UTF-8
    ],
)
def test_values_of_the_wrong_shape_or_type_are_refused(
    values: Any, types: tuple[type, ...]
) -> None:
    fingerprint = _fingerprint(SCOPE)
    assert_clean_422(refused(forge([fingerprint, values]), types=types))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!!",
        "not base64 at all \u00e9",
        "\ud800",  # not encodable
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        forge("just a string"),
        forge(12),
        forge(None),
        forge([]),
        forge(["only-one"]),
        forge([1, 2, 3]),
        base64.urlsafe_b64encode(b"[1,").decode(),  # not JSON
        "A" * 1025,  # longer than any cursor we make
    ],
)
def test_garbage_is_a_422_never_a_500(cursor: str) -> None:
    assert_clean_422(refused(cursor))


def test_an_over_long_cursor_is_refused_before_decoding() -> None:
    long = encode_cursor(SCOPE, ["x" * 2000, ID])
    assert len(long) > 1024
    assert_clean_422(refused(long))
    fits = encode_cursor(SCOPE, ["x" * 600, ID])
    assert len(fits) <= 1024 and decode_cursor(fits, SCOPE, (str, str))[0] == "x" * 600


def test_a_refused_cursor_does_not_echo_its_content() -> None:
    secret = "secret-token-abc123"
    cursor = forge([_fingerprint(SCOPE), [secret, 5]])
    assert_clean_422(refused(cursor), secret, cursor)


# ---- KeysetSort ------------------------------------------------------------------------------


CREATED = KeysetSort("created_at", True, dt.datetime.fromisoformat, str)
PRIORITY = KeysetSort("priority", False, int, int, alias="x")
DUE = KeysetSort("due_date", False, dt.date.fromisoformat, str, nullable=True)
DUE_DESC = KeysetSort("due_date", True, dt.date.fromisoformat, str, nullable=True)


def text(sql: Any) -> str:
    """Composed SQL as Postgres receives it, unquoted to read (identifiers are lower case)."""
    return str(sql.as_string(None)).replace('"', "")


def texts(ranges: list[tuple[list[Any], list[Any]]]) -> list[tuple[list[str], list[Any]]]:
    return [([text(c) for c in conditions], params) for conditions, params in ranges]


def test_order_by_and_after_follow_the_direction() -> None:
    assert text(CREATED.order_by()) == " order by t.created_at desc, t.id desc"
    assert text(CREATED.after()) == "(t.created_at, t.id) < (%s, %s)"
    assert text(PRIORITY.order_by()) == " order by x.priority, x.id"
    assert text(PRIORITY.after()) == "(x.priority, x.id) > (%s, %s)"


def test_identifiers_are_quoted_by_psycopg() -> None:
    assert CREATED.order_by().as_string(None) == ' order by "t"."created_at" desc, "t"."id" desc'


def test_ranges_of_a_not_nullable_column() -> None:
    assert CREATED.ranges(None) == [([], [])]
    assert texts(CREATED.ranges(("2024-01-01", ID))) == [
        (["(t.created_at, t.id) < (%s, %s)"], ["2024-01-01", ID])
    ]


def test_ranges_of_a_nullable_column_read_values_then_nulls() -> None:
    valued, empty = "t.due_date is not null", "t.due_date is null"
    assert texts(DUE.ranges(None)) == [([valued], []), ([empty], [])]
    assert texts(DUE.ranges((dt.date(2024, 1, 2), ID))) == [
        ([valued, "(t.due_date, t.id) > (%s, %s)"], [dt.date(2024, 1, 2), ID]),
        ([empty], []),
    ]
    # a cursor among the nulls skips the valued range, by id in the sort's direction
    assert texts(DUE.ranges((None, ID))) == [([empty, "t.id > %s"], [ID])]
    assert texts(DUE_DESC.ranges((None, ID))) == [([empty, "t.id < %s"], [ID])]
    assert texts(DUE_DESC.ranges(None)) == [([valued], []), ([empty], [])]


def test_range_sql_holds_only_placeholders_never_values() -> None:
    hostile = ("'); drop table tasks; --", ID)
    for sort in (CREATED, PRIORITY, DUE, DUE_DESC):
        ranges = texts(sort.ranges(hostile))
        assert all("drop" not in condition for conditions, _ in ranges for condition in conditions)
        assert ranges[0][1] == list(hostile)


def test_cursor_values_turn_dates_into_iso_text_and_ids_into_text() -> None:
    row = {"created_at": dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC), "id": UUID(ID)}
    assert CREATED.cursor_values(row) == ["2024-05-01T10:00:00+00:00", ID]
    assert DUE.cursor_values({"due_date": dt.date(2024, 5, 1), "id": UUID(ID)}) == [
        "2024-05-01",
        ID,
    ]
    assert DUE.cursor_values({"due_date": None, "id": ID}) == [None, ID]
    assert PRIORITY.cursor_values({"priority": 3, "id": ID}) == [3, ID]


def test_decode_round_trips_through_cursor_values() -> None:
    when = dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)
    cursor = encode_cursor(SCOPE, CREATED.cursor_values({"created_at": when, "id": UUID(ID)}))
    assert CREATED.decode(cursor, SCOPE) == (when, ID)
    cursor = encode_cursor(SCOPE, DUE.cursor_values({"due_date": None, "id": ID}))
    assert DUE.decode(cursor, SCOPE) == (None, ID)
    cursor = encode_cursor(SCOPE, PRIORITY.cursor_values({"priority": 7, "id": ID}))
    assert PRIORITY.decode(cursor, SCOPE) == (7, ID)


def test_decode_normalises_the_id() -> None:
    cursor = encode_cursor(SCOPE, ["2024-01-01", ID.upper()])
    assert DUE.decode(cursor, SCOPE) == (dt.date(2024, 1, 1), ID)


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        (CREATED, ["yesterday", ID]),  # the parser refuses it
        (CREATED, ["2024-01-01", "not-a-uuid"]),
        (CREATED, ["2024-01-01", None]),
        (CREATED, [None, ID]),  # a null where the column has none
        (DUE, ["2024-02-30", ID]),
        (PRIORITY, ["3", ID]),  # the JSON type is checked before parsing
        (PRIORITY, [3, 4]),
    ],
)
def test_decode_refuses_a_forged_cursor_with_a_422(sort: KeysetSort, values: list[Any]) -> None:
    cursor = encode_cursor(SCOPE, values)
    with pytest.raises(ValidationFailed) as raised:
        sort.decode(cursor, SCOPE)
    assert_clean_422(raised.value)


# ---- page() ----------------------------------------------------------------------------------


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"{i:08d}-0000-0000-0000-000000000000", "n": i} for i in range(n)]


def values(row: dict[str, Any]) -> list[Any]:
    return [row["n"], row["id"]]


def test_page_trims_the_extra_row_and_points_at_the_last_kept_one() -> None:
    items, meta = page(rows(4), 3, SCOPE, values)
    assert [row["n"] for row in items] == [0, 1, 2]
    assert meta["limit"] == 3
    assert decode_cursor(meta["next_cursor"], SCOPE, (int, str)) == [2, items[-1]["id"]]


@pytest.mark.parametrize("n", [0, 2, 3])
def test_the_last_page_has_no_cursor(n: int) -> None:
    items, meta = page(rows(n), 3, SCOPE, values)
    assert len(items) == n and meta == {"next_cursor": None, "limit": 3}


def test_the_next_cursor_is_bound_to_the_page_scope() -> None:
    _, meta = page(rows(2), 1, SCOPE, values)
    with pytest.raises(ValidationFailed):
        decode_cursor(meta["next_cursor"], {**SCOPE, "project_id": "p2"}, (int, str))
