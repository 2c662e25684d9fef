"""Validation: one 422 with loc/type/message, nothing echoed, NUL and strict JSON refused."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal
from uuid import UUID

import pytest
from pydantic import BaseModel, Field

from shared.errors import InvalidJson, ValidationFailed
from shared.validation import Model, parse_json, query_data, validate


class Tag(Model):
    name: str = Field(max_length=20)


class TaskIn(Model):
    title: str = Field(min_length=1, max_length=10)
    priority: int = 0
    status: Literal["todo", "done"] = "todo"
    tags: list[Tag] = []
    labels: dict[str, str] = {}
    due: date | None = None


class Login(Model):
    token: str = Field(min_length=64, pattern=r"^[a-f0-9]+$")
    pin: int
    when: date
    id: UUID
    kind: Literal["a", "b"]


class ListQuery(Model):
    status: list[str] | None = None
    ids: tuple[int, ...] = ()
    kinds: set[str] = set()
    limit: int = 50
    q: str | None = None


def failed(model: type[BaseModel], data: Any, where: str = "body") -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as raised:
        validate(model, data, where)
    error = raised.value
    assert error.status == 422 and error.code == "VALIDATION_FAILED"
    assert error.details
    for detail in error.details:
        assert set(detail) == {"loc", "type", "message"}
        assert detail["loc"][0] == where
    return error.details


# ---- validate --------------------------------------------------------------------------------


def test_valid_data_becomes_the_model_with_whitespace_stripped() -> None:
    task = validate(TaskIn, {"title": "  Buy  ", "tags": [{"name": "x"}]}, "body")
    assert isinstance(task, TaskIn)
    assert task.title == "Buy" and task.tags == [Tag(name="x")]


def test_unknown_fields_are_rejected_not_dropped() -> None:
    details = failed(TaskIn, {"title": "a", "titel": "typo"})
    assert details == [
        {
            "loc": ["body", "titel"],
            "type": "extra_forbidden",
            "message": "Extra inputs are not permitted",
        }
    ]
    nested = failed(TaskIn, {"title": "a", "tags": [{"name": "x", "color": "red"}]})
    assert [(d["loc"], d["type"]) for d in nested] == [
        (["body", "tags", 0, "color"], "extra_forbidden")
    ]


def test_every_problem_is_reported_with_its_place() -> None:
    details = failed(TaskIn, {"title": "", "priority": "high", "status": "open"})
    assert {(tuple(d["loc"]), d["type"]) for d in details} == {
        (("body", "title"), "string_too_short"),
        (("body", "priority"), "int_parsing"),
        (("body", "status"), "literal_error"),
    }
    assert failed(TaskIn, {}, "query") == [
        {"loc": ["query", "title"], "type": "missing", "message": "Field required"}
    ]


def test_a_body_that_is_not_an_object() -> None:
    for data in ([], "text", 3, None):
        details = failed(TaskIn, data)
        assert details[0]["loc"] == ["body"] and details[0]["type"] == "model_type"


def test_no_input_or_context_is_echoed() -> None:
    secret = "SeCrEt-" + "z" * 70
    details = failed(
        Login,
        {"token": secret, "pin": secret, "when": secret, "id": secret, "kind": secret, secret: 1},
    )
    types = {d["type"] for d in details}
    assert {"string_pattern_mismatch", "int_parsing", "date_from_datetime_parsing",
            "uuid_parsing", "literal_error", "extra_forbidden"} <= types  # fmt: skip
    # an unknown key is named in `loc` (it is the caller's own key), but no value is echoed
    values = [d for d in details if d["type"] != "extra_forbidden"]
    assert "SeCrEt" not in json.dumps(values)
    assert all("SeCrEt" not in d["message"] for d in details)


def test_nul_in_a_valid_value_is_a_422_naming_the_field() -> None:
    details = failed(TaskIn, {"title": "a\x00b"})
    assert details == [
        {
            "loc": ["body", "title"],
            "type": "string_nul",
            "message": "Text may not contain NUL (\\u0000)",
        }
    ]


def test_nul_is_found_in_lists_nested_models_and_dict_values() -> None:
    details = failed(
        TaskIn,
        {"title": "ok", "tags": [{"name": "x"}, {"name": "\x00"}], "labels": {"k": "v\x00"}},
    )
    assert sorted(tuple(d["loc"]) for d in details) == [
        ("body", "labels", "k"),
        ("body", "tags", 1, "name"),
    ]
    assert {d["type"] for d in details} == {"string_nul"}


def test_nul_in_a_key_names_the_object_holding_it() -> None:
    details = failed(TaskIn, {"title": "ok", "labels": {"k\x00": "v"}})
    assert [(d["loc"], d["type"]) for d in details] == [(["body", "labels"], "string_nul")]


def test_nul_beside_other_problems_is_reported_once_per_place() -> None:
    details = failed(
        TaskIn, {"title": "much too long\x00", "priority": "x", "tags": [{"name": "\x00"}]}
    )
    by_loc = {tuple(d["loc"]): d["type"] for d in details}
    assert by_loc == {
        ("body", "title"): "string_too_long",  # pydantic's problem stands; no second entry
        ("body", "priority"): "int_parsing",
        ("body", "tags", 0, "name"): "string_nul",
    }
    assert len(details) == 3


def test_nul_in_a_field_a_lenient_model_ignores_is_still_refused() -> None:
    class Lenient(BaseModel):
        name: str

    details = failed(Lenient, {"name": "ok", "ignored": "x\x00"}, "query")
    assert details == [
        {
            "loc": ["query", "ignored"],
            "type": "string_nul",
            "message": "Text may not contain NUL (\\u0000)",
        }
    ]


# ---- query_data ------------------------------------------------------------------------------


def test_list_fields_take_repeats_and_commas() -> None:
    data = query_data(
        ListQuery,
        {"status": ["todo,done", "blocked", ",,"], "ids": ["1,2"], "kinds": ["a"], "limit": ["5"]},
    )
    assert data == {"status": ["todo", "done", "blocked"], "ids": ["1", "2"], "kinds": ["a"],
                    "limit": "5"}  # fmt: skip
    query = validate(ListQuery, data, "query")
    assert query.status == ["todo", "done", "blocked"] and query.ids == (1, 2)
    assert query.limit == 5


def test_an_empty_list_parameter_is_an_empty_list() -> None:
    assert query_data(ListQuery, {"status": [""]}) == {"status": []}


def test_a_scalar_given_twice_is_refused_not_picked() -> None:
    with pytest.raises(ValidationFailed) as raised:
        query_data(ListQuery, {"limit": ["5", "500"], "q": ["a", "b"], "status": ["x", "y"]})
    assert raised.value.details == [
        {"loc": ["query", "limit"], "type": "duplicate", "message": "Give this parameter once"},
        {"loc": ["query", "q"], "type": "duplicate", "message": "Give this parameter once"},
    ]


def test_unknown_query_parameters_reach_the_model_and_are_refused() -> None:
    data = query_data(ListQuery, {"limti": ["5"]})
    assert data == {"limti": "5"}
    assert failed(ListQuery, data, "query")[0]["loc"] == ["query", "limti"]


# ---- parse_json ------------------------------------------------------------------------------


def test_parse_json_reads_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9\\ud83d\\ude00", null, true]}') == {
        "a": [1, 2.5, "\u00e9\U0001f600", None, True]
    }
    assert parse_json('"caf\u00e9"'.encode()) == "caf\u00e9"


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"{'a': 1}", b"[1,]", b"\xef\xbb\xbf{}", b"1" * 5000, b"[" * 100_000]
)
def test_invalid_json_is_a_400(raw: bytes) -> None:
    with pytest.raises(InvalidJson) as raised:
        parse_json(raw)
    assert raised.value.status == 400 and raised.value.code == "INVALID_JSON"


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": NaN}', b"[Infinity]", b'{"a": -Infinity}'])
def test_nan_and_infinity_are_not_json(raw: bytes) -> None:
    with pytest.raises(InvalidJson) as raised:
        parse_json(raw)
    assert raised.value.message == "The body is not valid JSON"


@pytest.mark.parametrize(
    "raw",
    [b'"\\ud800"', b'{"a": "x\\udfffy"}', b'{"\\udc00": 1}', b'[["\\ud83d"]]', b'"\\ude00\\ud83d"'],
)
def test_lone_surrogates_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidJson) as raised:
        parse_json(raw)
    assert "surrogate" in raised.value.message


@pytest.mark.parametrize(
    "raw", [b'"\xff"', b'"\xc3"', b'"\xed\xa0\x80"', "\"caf\u00e9\"".encode("latin-1"),
            '{"a": 1}'.encode("utf-16")],
)  # fmt: skip
def test_bodies_that_are_not_utf8_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidJson) as raised:
        parse_json(raw)
    assert raised.value.message == "The body is not valid UTF-8"


def test_an_escaped_backslash_before_u_is_not_taken_for_a_surrogate() -> None:
    assert parse_json(b'"C:\\\\users"') == "C:\\users"


def test_invalid_json_does_not_chain_the_parser_error() -> None:
    with pytest.raises(InvalidJson) as raised:
        parse_json(b'{"password": "hunter2"')
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert "hunter2" not in raised.value.message


# ---- Model -----------------------------------------------------------------------------------


def test_model_forbids_extra_and_strips_whitespace() -> None:
    class Note(Model):
        text: str

    assert Note.model_config.get("extra") == "forbid"
    assert Note(text="  hi \n").text == "hi"
    with pytest.raises(ValueError, match="extra"):
        Note.model_validate({"text": "a", "more": 1})
