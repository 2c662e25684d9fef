"""CORS: only allow-listed origins are echoed; `*` never comes with credentials."""

from __future__ import annotations

import pytest

from shared.cors import ALLOWED_HEADERS, EXPOSED_HEADERS, CorsPolicy

APP = "https://app.example.com"
ADMIN = "https://admin.example.com"
LISTED = CorsPolicy((APP, ADMIN))
ANY = CorsPolicy(("*",))


def test_an_allow_listed_origin_is_echoed_with_vary_and_credentials() -> None:
    assert LISTED.headers_for(ADMIN) == {
        "Vary": "Origin",
        "Access-Control-Allow-Origin": ADMIN,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Access-Control-Allow-Credentials": "true",
    }


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://app.example.com.evil.net",  # a prefix is not a match
        "http://app.example.com",  # another scheme
        "https://app.example.com:8443",  # another port
        "https://APP.example.com",  # origins are compared as browsers serialise them
        "https://app.example.com/",
        "null",  # sandboxed frames and file: pages
        "*",
        "",
        None,
    ],
)
def test_any_other_origin_gets_only_vary(origin: str | None) -> None:
    assert not LISTED.allows(origin)
    assert LISTED.headers_for(origin) == {"Vary": "Origin"}
    assert LISTED.preflight_headers(origin, ["GET", "OPTIONS"]) == {"Vary": "Origin"}


def test_the_wildcard_echoes_any_origin_without_credentials() -> None:
    headers = ANY.headers_for("https://anyone.example")
    assert headers == {
        "Vary": "Origin",
        "Access-Control-Allow-Origin": "https://anyone.example",
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
    }
    assert ANY.any_origin and not LISTED.any_origin


def test_the_wildcard_beside_listed_origins_still_drops_credentials() -> None:
    mixed = CorsPolicy((APP, "*"))
    for origin in (APP, "https://other.example"):
        headers = mixed.headers_for(origin)
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Credentials" not in headers
        preflight = mixed.preflight_headers(origin, ["GET"])
        assert "Access-Control-Allow-Credentials" not in preflight


def test_the_wildcard_never_answers_a_missing_origin() -> None:
    for origin in (None, ""):
        assert not ANY.allows(origin)
        assert ANY.headers_for(origin) == {"Vary": "Origin"}


def test_no_policy_allows_nothing() -> None:
    empty = CorsPolicy(())
    assert not empty.allows(APP)
    assert empty.headers_for(APP) == {"Vary": "Origin"}


def test_a_preflight_for_an_allowed_origin_lists_methods_headers_and_max_age() -> None:
    headers = LISTED.preflight_headers(APP, ["GET", "HEAD", "OPTIONS", "PATCH"])
    assert headers == {
        "Vary": "Origin",
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS, PATCH",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    assert (
        CorsPolicy((APP,), max_age=30).preflight_headers(APP, ["GET"])["Access-Control-Max-Age"]
        == "30"
    )


def test_the_headers_a_browser_sends_are_allowed_and_ours_exposed() -> None:
    allowed = {name.strip() for name in ALLOWED_HEADERS.split(",")}
    assert {
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
        "x-request-id",
    } <= allowed
    exposed = {name.strip() for name in EXPOSED_HEADERS.split(",")}
    assert {"x-request-id", "etag", "retry-after", "idempotent-replayed"} <= exposed


def test_an_answer_cannot_be_changed_for_the_next_request() -> None:
    first = LISTED.headers_for(APP)
    with pytest.raises(TypeError):
        first["Access-Control-Allow-Origin"] = "https://evil.example.com"  # type: ignore[index]
    assert LISTED.headers_for(APP)["Access-Control-Allow-Origin"] == APP
    preflight = LISTED.preflight_headers(APP, ["GET"])
    preflight["X"] = "y"  # a preflight's answer is its own copy
    assert "X" not in LISTED.headers_for(APP)
