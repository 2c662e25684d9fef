"""The encoders built once (shared.db, shared.pagination) write what `json.dumps` writes.

Cursors already handed out must keep decoding after a deploy (their fingerprint is a hash of
this text), and SQL reads the impersonation's claims and headers as this text."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from shared import db, pagination

VALUES: list[Any] = [
    {"role": "authenticated", "sub": str(uuid.uuid4()), "exp": 1999999999, "is_anonymous": False},
    {"email": "zoë@exämple.com", "amr": [{"method": "otp", "timestamp": 1.5}], "x": None},
    {"app_metadata": {"providers": ["email", "github"]}, "user_metadata": {"名前": "\u2028\x00"}},
    {"b": 1, "a": 2, "nan": float("nan"), "inf": float("inf"), "big": 2**80},
    {"workspace_id": uuid.UUID(int=7), "due_before": dt.date(2026, 12, 8), "status": []},
    [None, True, 'a"b\\c', ["nested", {"k": "v"}], 0.1],
    {},
    "text",
]


@pytest.mark.parametrize("value", VALUES[:4] + VALUES[5:])
def test_compact_json_is_json_dumps(value: Any) -> None:
    assert db._COMPACT_JSON.encode(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
def test_the_cursor_text_is_json_dumps(value: Any) -> None:
    assert pagination._SCOPE_JSON.encode(value) == json.dumps(value, sort_keys=True, default=str)
    assert pagination._CURSOR_JSON.encode(["f", value]) == json.dumps(
        ["f", value], default=str, separators=(",", ":")
    )


def test_a_cursor_round_trips() -> None:
    scope = {"workspace_id": str(uuid.UUID(int=1)), "status": ["todo"], "sort": "-created_at"}
    cursor = pagination.encode_cursor(scope, ["2026-12-08T00:00:00+00:00", str(uuid.UUID(int=2))])
    assert pagination.decode_cursor(cursor, scope, (str, str)) == [
        "2026-12-08T00:00:00+00:00",
        str(uuid.UUID(int=2)),
    ]
