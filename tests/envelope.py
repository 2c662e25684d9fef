"""Assertions on the response envelope, shared by the function tests."""

from __future__ import annotations

from typing import Any

import httpx


def ok_body(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The whole success envelope, after checking the status and `success`."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True
    return body


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The `data` of a success envelope."""
    return ok_body(response, status)["data"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The whole error envelope: status, code, the request id echoed, no traceback."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
    assert "Traceback" not in response.text
    return body


def fails(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The `error` object of an error envelope."""
    error: dict[str, Any] = assert_error(response, status, code)["error"]
    return error
