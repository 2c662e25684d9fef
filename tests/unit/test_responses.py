"""Responses: the werkzeug reliance pinned, header refusals, bodies per answer format."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from shared.envelope import Answer, Result
from shared.errors import ApiError, Conflict, MethodNotAllowed, Unauthenticated, ValidationFailed
from shared.request import Request
from shared.responses import encode, refuse_line_breaks, render, trusted_headers
from shared.routing import Route
from shared.settings import Settings

SETTINGS = Settings(
    supabase_url="http://127.0.0.1:1",
    database_url="postgresql://x@127.0.0.1/x",
    upstash_url="http://127.0.0.1:1",
    upstash_token="t",
)


def handler() -> None: ...


def make_request(answer: Answer | None = "envelope") -> Request:
    request = Request(
        function="notes",
        method="GET",
        path="/",
        headers=Headers([("Origin", "https://app.example.com")]),
        query_string=b"",
        request_id="req-1",
        client_ip="203.0.113.9",
        settings=SETTINGS,
    )
    if answer is not None:
        request.route = Route("GET", "/", handler, answer=answer)
    return request


def body(payload: bytes | None) -> Any:
    assert payload is not None
    return json.loads(payload)


# ---- trusted_headers: the reliance on werkzeug's private storage -----------------------------

SAMPLE = {
    "X-Request-Id": "req-1",
    "Cache-Control": "no-store",
    "Vary": "Origin",
    "Access-Control-Allow-Origin": "https://app.example.com",
    "Content-Type": "application/json",
    "ETag": 'W/"3"',
    "RateLimit": "limit=100, remaining=99, reset=60",
    "Server-Timing": "total;dur=1.25, db;dur=0.50",
    "Set-Cookie": "a=b; Path=/; HttpOnly",
    "x-lower-case": "v",
    "Empty": "",
    "Unicode": "caf\u00e9",
}


def test_trusted_headers_equal_the_public_constructor_item_for_item() -> None:
    trusted = trusted_headers(dict(SAMPLE))
    public = Headers(list(SAMPLE.items()))
    assert type(trusted) is Headers
    assert list(trusted.items()) == list(public.items())  # same items, same order
    assert list(trusted.keys()) == list(public.keys())
    assert trusted.to_wsgi_list() == public.to_wsgi_list()
    assert trusted == public
    assert len(trusted) == len(public) == len(SAMPLE)
    for name in [*SAMPLE, "x-request-id", "CONTENT-TYPE", "X-LOWER-CASE", "Missing"]:
        assert trusted.get(name) == public.get(name)
        assert trusted.getlist(name) == public.getlist(name)
        assert (name in trusted) == (name in public)
    assert trusted.get("Missing", "default") == "default"


def test_trusted_headers_behave_like_any_headers_afterwards() -> None:
    source = dict(SAMPLE)
    trusted = trusted_headers(source)
    trusted.add("Set-Cookie", "c=d")
    trusted.set("Vary", "Accept")
    trusted["Content-Length"] = "10"
    del trusted["Empty"]
    assert trusted.getlist("Set-Cookie") == ["a=b; Path=/; HttpOnly", "c=d"]
    assert trusted["vary"] == "Accept" and trusted["Content-Length"] == "10"
    assert "Empty" not in trusted
    assert source == SAMPLE  # the dict it came from is not aliased
    with pytest.raises(ValueError):
        trusted.set("X-Bad", "a\r\nb")  # the public methods still validate


def test_trusted_headers_of_nothing() -> None:
    trusted = trusted_headers({})
    assert len(trusted) == 0 and trusted.to_wsgi_list() == [] and trusted == Headers()


# ---- refuse_line_breaks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Note": "a\r\nSet-Cookie: evil=1"},
        {"X-Note": "a\nb"},
        {"X-Note": "a\rb"},
        {"X-Note": "\n"},
        {"X-No\r\nte": "v"},
        {"X-Note\n": "v"},
        {"Fine": "ok", "X-Note": "trailing\n"},
    ],
)
def test_line_breaks_in_names_or_values_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="holds a line break"):
        refuse_line_breaks(headers)


def test_headers_without_line_breaks_pass() -> None:
    assert refuse_line_breaks({}) is None
    assert refuse_line_breaks({"ETag": 'W/"1"', "X-Tab": "a\tb", "X-Unicode": "caf\u00e9"}) is None


@pytest.mark.parametrize(
    "value", ["ok", "a\nb", "a\rb", "a\r\nb", "a\tb", "a\x00b", "a\x0bb", "a\x0cb"]
)
def test_refuse_line_breaks_refuses_at_least_what_werkzeug_refuses(value: str) -> None:
    try:
        Headers([("X", value)])
    except ValueError:
        werkzeug_refuses = True
    else:
        werkzeug_refuses = False
    try:
        refuse_line_breaks({"X": value})
    except ValueError:
        we_refuse = True
    else:
        we_refuse = False
    assert we_refuse or not werkzeug_refuses


# ---- encode ----------------------------------------------------------------------------------


def test_an_envelope_success() -> None:
    result = Result({"id": 1}, meta={"cached": True}, pagination={"next_cursor": None, "limit": 5})
    assert body(encode(make_request(), result, None)) == {
        "success": True,
        "data": {"id": 1},
        "meta": {"request_id": "req-1", "cached": True,
                 "pagination": {"next_cursor": None, "limit": 5}},
    }  # fmt: skip


@pytest.mark.parametrize("answer", ["raw", "auth_hook"])
def test_raw_and_auth_hook_successes_are_the_document_itself(answer: Answer) -> None:
    document = {"claims": {"role": "authenticated", "aal": "aal1"}}
    result = Result(document, answer=answer, meta={"ignored": True})
    assert body(encode(make_request(answer), result, None)) == document
    assert body(encode(make_request(answer), Result({}, answer=answer), None)) == {}


def test_a_success_follows_the_result_answer_not_the_route() -> None:
    # an idempotent replay carries the format it was stored with
    assert body(encode(make_request("envelope"), Result([1], answer="raw"), None)) == [1]


def test_204_has_no_body_whatever_the_format() -> None:
    for answer in ("envelope", "raw", "auth_hook"):
        assert (
            encode(make_request(answer), Result({"x": 1}, status=204, answer=answer), None) is None
        )


def test_an_error_is_the_envelope_in_the_route_format() -> None:
    error = ValidationFailed(details=[{"loc": ["body", "x"], "type": "missing", "message": "m"}])
    envelope = body(encode(make_request("envelope"), Result(status=422), error))
    assert envelope == {
        "success": False,
        "error": {"code": "VALIDATION_FAILED", "message": "The request is not valid",
                  "details": [{"loc": ["body", "x"], "type": "missing", "message": "m"}]},
        "meta": {"request_id": "req-1"},
    }  # fmt: skip
    # raw routes keep errors in the envelope
    assert body(encode(make_request("raw"), Result(status=422), error)) == envelope
    # auth hooks: the same envelope, whose error also has the hook contract's http_code
    hook = body(encode(make_request("auth_hook"), Result(status=422), error))
    assert hook["error"]["http_code"] == 422
    assert {k: v for k, v in hook["error"].items() if k != "http_code"} == envelope["error"]


def test_an_error_before_routing_is_an_envelope() -> None:
    payload = body(encode(make_request(None), Result(status=404), Conflict("taken")))
    assert payload["error"] == {"code": "CONFLICT", "message": "taken"}


def test_an_error_wins_over_a_204_result() -> None:
    assert body(encode(make_request(), Result(status=204), Conflict()))["success"] is False


def test_encode_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(TypeError):
        encode(make_request(), Result({"x": object()}), None)


# ---- render: the whole response --------------------------------------------------------------


def rendered(
    result: Result,
    error: ApiError | None = None,
    *,
    request: Request | None = None,
    cors: dict[str, str] | None = None,
    head: bool = False,
) -> tuple[Any, list[tuple[BaseException, ApiError]]]:
    logged: list[tuple[BaseException, ApiError]] = []
    response = render(
        request or make_request(),
        result,
        error,
        cors or {},
        head,
        time.perf_counter(),
        lambda exc, err: logged.append((exc, err)),
    )
    return response, logged


def test_render_sets_the_runtime_headers() -> None:
    request = make_request()
    request.response_headers["RateLimit"] = "limit=10, remaining=9, reset=5"
    response, logged = rendered(
        Result({"ok": True}, headers={"ETag": 'W/"2"'}),
        request=request,
        cors={"Vary": "Origin", "Access-Control-Allow-Origin": "https://app.example.com"},
    )
    assert logged == [] and response.status_code == 200
    headers = response.headers
    assert headers["X-Request-Id"] == "req-1" and headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "application/json"
    assert headers["ETag"] == 'W/"2"' and headers["RateLimit"].startswith("limit=10")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert headers["Server-Timing"].startswith("total;dur=")
    assert json.loads(response.get_data())["data"] == {"ok": True}


def test_the_runtime_headers_win_over_a_handler_header() -> None:
    response, _ = rendered(
        Result({}, headers={"X-Request-Id": "forged", "Cache-Control": "public"})
    )
    assert response.headers.getlist("X-Request-Id") == ["req-1"]
    assert response.headers["Cache-Control"] == "no-store"


def test_a_204_has_no_content_type_and_no_body() -> None:
    response, _ = rendered(Result(status=204))
    assert response.status_code == 204 and response.get_data() == b""
    assert "Content-Type" not in response.headers


def test_head_keeps_the_headers_and_drops_the_body() -> None:
    response, _ = rendered(Result({"ok": True}), head=True)
    assert response.get_data() == b"" and response.headers["Content-Type"] == "application/json"


def test_an_error_carries_its_own_headers() -> None:
    response, _ = rendered(Result(status=405), MethodNotAllowed(["GET", "HEAD", "OPTIONS"]))
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD, OPTIONS"
    response, _ = rendered(Result(status=401), Unauthenticated())
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    "result",
    [
        Result({"x": object()}),  # JSON cannot carry it
        Result({"x": 1}, headers={"X-Note": "a\r\nSet-Cookie: evil=1"}),  # HTTP cannot
    ],
)
def test_what_cannot_be_sent_is_a_logged_500_envelope(result: Result) -> None:
    response, logged = rendered(result)
    assert response.status_code == 500
    payload = json.loads(response.get_data())
    assert payload["error"]["code"] == "INTERNAL" and payload["meta"] == {"request_id": "req-1"}
    assert len(logged) == 1 and isinstance(logged[0][0], TypeError | ValueError)
    assert "X-Note" not in response.headers


def test_a_handler_error_header_with_a_line_break_never_reaches_the_response() -> None:
    """A handler may raise an ApiError with headers; they go out as trusted headers too.

    `refuse_line_breaks` checks only `result.headers`, so the error's headers (and
    `request.response_headers`) skip both it and werkzeug's own check.
    """
    error = Conflict("taken", headers={"Location": "/x\r\nSet-Cookie: session=attacker"})
    response, _ = rendered(Result(status=409), error)
    for name, value in response.headers.to_wsgi_list():
        assert "\r" not in value and "\n" not in value, f"{name} would split the response"


@pytest.mark.parametrize("status", [200, 201, 204, 304, 404, 500])
def test_wsgi_headers_are_what_werkzeug_would_send(status: int) -> None:
    """Our `get_wsgi_headers` skips werkzeug's second validation; the result is the same."""
    import flask
    from werkzeug.test import EnvironBuilder

    from shared.responses import _Response

    body = b"" if status in (204, 304) else b'{"success":true}'
    headers = {"X-Request-Id": "abc", "Content-Type": "application/json", "Vary": "Origin"}
    # Content-Length as `render` writes it (werkzeug's set_data would, for every status).
    sent = {**headers, "Content-Length": str(len(body))}
    ours = _Response(body, status=status, headers=trusted_headers(sent))
    theirs = flask.Response(body, status=status, headers=headers)
    environ = EnvironBuilder().get_environ()
    assert (
        ours.get_wsgi_headers(environ).to_wsgi_list()
        == theirs.get_wsgi_headers(environ).to_wsgi_list()
    )
