"""`dumpb` writes what orjson with OPT_NON_STR_KEYS writes (its first try goes without the
option, which only changes dicts with keys that are not text), and the standard library's
JSON where orjson refuses."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from shared.envelope import _default, dumpb


class Item(BaseModel):
    id: uuid.UUID
    at: dt.datetime


NOW = dt.datetime(2026, 12, 7, 23, 50, 1, 123456, tzinfo=dt.UTC)
ID = uuid.UUID("c0000000-0000-4000-8000-000000000001")
PAYLOADS: list[Any] = [
    {"success": True, "data": [{"id": ID, "due": NOW.date(), "at": NOW, "n": 1.5}], "meta": {}},
    {"text": "é ✓ \u2028 \x00 \ud7ff", "nested": [[{"a": None}], True, -0.0, 2**63 - 1]},
    {"model": Item(id=ID, at=NOW), "decimal": decimal.Decimal("1.25"), "set": frozenset([1])},
    {"delta": dt.timedelta(seconds=90), "tuple": (1, "x"), "time": dt.time(1, 2, 3)},
    {1: "int key", ID: "uuid key", NOW.date(): "date key", None: "none key"},
    {"deep": {2: {"k": [ID]}}},
    [],
    "plain",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_as_orjson_with_non_str_keys(payload: Any) -> None:
    assert dumpb(payload) == orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)


def test_what_orjson_refuses_goes_to_the_standard_library() -> None:
    big = {"n": 2**70, 1: "x"}
    assert dumpb(big) == json.dumps(big, separators=(",", ":")).encode()
    with pytest.raises(TypeError):
        dumpb({"x": object()})
