"""Validate path, query and body with pydantic v2; turn failures into one 422.

Details list `loc`, `type` and a message per problem. Pydantic's `input` and `ctx` are left
out on purpose: they can echo a caller's secrets back into responses and logs.

Text that Postgres cannot store is refused here, not at the database: a NUL character
(`\u0000`, which `text` cannot hold) is a 422 naming the field, and a lone UTF-16 surrogate
(`"\ud800"`, valid JSON syntax but not Unicode, so not encodable as UTF-8) is a 400.
"""

from __future__ import annotations

import functools
import json
import re
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import InvalidJson, ValidationFailed

M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    """Base for request models: unknown fields are an error, not silently dropped.

    `defer_build`: pydantic builds a model's validator the first time it validates, not when
    the class is defined. A cold start then builds only the models its first request uses
    (a function declares a dozen; building them all cost ~8 ms of tasks' start here)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Schema(BaseModel):
    """Base for response models a function only names in `response=`: the runtime sends
    what a handler returns and never validates it, so the model serves `/openapi.json` alone
    and is built there (`defer_build`), not by every cold start (~0.3 ms each; ~1 ms for
    tasks' four). A model a handler instantiates is built at its first use instead."""

    model_config = ConfigDict(defer_build=True)


def _details(error: ValidationError, where: str) -> list[dict[str, Any]]:
    return [
        {"loc": [where, *item["loc"]], "type": item["type"], "message": item["msg"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def _has_nul(data: Any) -> bool:
    """Any NUL anywhere (the cheap pass; `_nul_locs` then says where)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _nul_locs(data: Any, where: str) -> list[list[str | int]]:
    """Where a string (or a key: then its object's place) holds a NUL character."""
    found: list[list[str | int]] = []
    stack: list[tuple[Any, list[str | int]]] = [(data, [where])]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                found.append(loc)
        elif isinstance(item, dict):
            if any(isinstance(key, str) and "\x00" in key for key in item):
                found.append(loc)
            else:
                stack.extend((value, [*loc, key]) for key, value in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((value, [*loc, index]) for index, value in enumerate(item))
    return sorted(found, key=str)


def validate(model: type[M], data: Any, where: str, nul_possible: bool = True) -> M:
    """`model` from `data`; a 422 naming every problem, NUL characters included.

    `nul_possible=False` says the source cannot hold a NUL (the caller checked its raw text:
    a query string without `%00`, a JSON body without `\u0000`), which spares the scan."""
    details: list[dict[str, Any]] = []
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        details = _details(exc, where)
    else:
        if not nul_possible or not _has_nul(data):
            return validated
    reported = {tuple(d["loc"]) for d in details}
    for loc in _nul_locs(data, where):
        if tuple(loc) not in reported:
            details.append(
                {"loc": loc, "type": "string_nul", "message": "Text may not contain NUL (\\u0000)"}
            )
    if details:
        raise ValidationFailed(details=details)
    return validated


def _is_list_field(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_list_field(arg) for arg in typing.get_args(annotation) if arg is not type(None))


@functools.cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of a query model that take several values (worked out once per model)."""
    return frozenset(
        name for name, field in model.model_fields.items() if _is_list_field(field.annotation)
    )


def query_data(model: type[BaseModel], args: Mapping[str, list[str]]) -> dict[str, Any]:
    """Shape multi-valued query args for a model: lists where the field is a list.

    A list field accepts both `?status=a&status=b` and `?status=a,b`. A scalar field given
    twice is refused instead of silently taking one of the values.
    """
    data: dict[str, Any] = {}
    duplicates: list[dict[str, Any]] = []
    list_fields = _list_fields(model)
    for name, values in args.items():
        if name in list_fields:
            data[name] = [part for value in values for part in value.split(",") if part != ""]
        elif len(values) > 1:
            duplicates.append(
                {"loc": ["query", name], "type": "duplicate", "message": "Give this parameter once"}
            )
        else:
            data[name] = values[0]
    if duplicates:
        raise ValidationFailed(details=duplicates)
    return data


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body strictly: UTF-8 only, no NaN/Infinity, no lone surrogates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("The body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise InvalidJson() from None
    # Decoded UTF-8 holds no surrogates; only a `\uD800`-style escape can bring one in.
    if "\\u" in text and _has_lone_surrogate(value):
        raise InvalidJson("The body has a lone UTF-16 surrogate (\\uD800-\\uDFFF escape)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if re.search(_SURROGATE, item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_SURROGATE = "[\ud800-\udfff]"  # compiled at first use: only a body with a `\u` escape needs it


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
