"""Machine callers over real HTTP: Standard Webhooks signatures (made by the reference library,
as Supabase Auth makes them) and the database webhooks' bearer secret. Every refused request
is shown not to reach the handler (the test function records each call it gets)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import pytest

from fnkit.devenv import (
    DEV_ANON_KEY,
    DEV_AUTH_HOOK_SECRET,
    DEV_DB_WEBHOOK_SECRET,
    DEV_PUBLISHABLE_KEY,
    DEV_SERVICE_ROLE_KEY,
)
from tests.fixtures.server import SECOND_HOOK_SECRET, Served
from tests.webhook_signing import signed

BODY = {"user_id": "11111111-1111-1111-1111-111111111111", "claims": {"role": "authenticated"}}


def calls() -> list[dict[str, Any]]:
    return sys.modules["fnkit_functions_machine"].CALLS  # type: ignore[no-any-return]


@pytest.fixture
def machine(served: Served) -> Any:
    calls().clear()
    with served.client() as client:
        yield client


def post(client: Any, path: str, content: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/machine/{path}", content=content, headers=headers)


def refused(response: Any, status: int = 401, code: str = "UNAUTHENTICATED") -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["meta"]["request_id"] == response.headers["X-Request-Id"]
    assert calls() == [], "the handler was called"
    return body  # type: ignore[no-any-return]


def test_a_valid_signature_reaches_the_handler_once(machine: Any) -> None:
    content, headers = signed(BODY)
    response = post(machine, "signed", content, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": BODY}  # the hook's own format, not the envelope
    assert calls() == [{"route": "signed", "json": BODY}]


def test_the_second_secret_of_a_rotation_is_accepted(machine: Any) -> None:
    content, headers = signed(BODY, secret=SECOND_HOOK_SECRET)
    assert post(machine, "signed", content, headers).status_code == 200
    assert len(calls()) == 1


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_a_call_signed_with_both_secrets_as_supabase_auth_signs_it_is_accepted(
    machine: Any, order: str
) -> None:
    """During a rotation Supabase Auth signs with every configured secret and joins the
    signatures with ", " (GoTrue's generateSignatures): `v1,<a>, v1,<b>`. The reference
    library splits on spaces alone, so `v1,<a>,` once made every such call a 401 and every
    sign-in a 500."""
    secrets = [DEV_AUTH_HOOK_SECRET, SECOND_HOOK_SECRET]
    if order == "new-first":
        secrets.reverse()
    content, headers = signed(BODY, secret=secrets[0])
    _, other = signed(
        BODY,
        secret=secrets[1],
        msg_id=headers["webhook-id"],
        at=dt.datetime.fromtimestamp(int(headers["webhook-timestamp"]), dt.UTC),
    )
    headers["webhook-signature"] += ", " + other["webhook-signature"]
    assert post(machine, "signed", content, headers).status_code == 200
    assert len(calls()) == 1


def test_a_tampered_body_is_refused(machine: Any) -> None:
    content, headers = signed(BODY)
    body = refused(
        post(machine, "signed", content.replace(b"authenticated", b"service_role"), headers)
    )
    # An Auth hook route's error is also the hook contract's: error.http_code and message.
    assert body["error"]["http_code"] == 401 and body["error"]["message"]


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
def test_a_tampered_header_is_refused(machine: Any, header: str) -> None:
    content, headers = signed(BODY)
    headers[header] = (
        str(int(headers[header]) - 1) if header == "webhook-timestamp" else headers[header] + "x"
    )
    refused(post(machine, "signed", content, headers))


def test_a_signature_with_another_secret_is_refused(machine: Any) -> None:
    other = "v1,whsec_b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVkLTAwMA=="
    content, headers = signed(BODY, secret=other)
    refused(post(machine, "signed", content, headers))


@pytest.mark.parametrize("minutes", [-6, 6], ids=["stale", "future"])
def test_a_timestamp_outside_five_minutes_is_refused(machine: Any, minutes: int) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    content, headers = signed(BODY, at=at)
    body = refused(post(machine, "signed", content, headers))
    assert "5-minute" in body["error"]["message"]


def test_a_timestamp_inside_the_window_is_accepted(machine: Any) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)
    content, headers = signed(BODY, at=at)
    assert post(machine, "signed", content, headers).status_code == 200


def test_a_replayed_webhook_id_is_refused(machine: Any) -> None:
    content, headers = signed(BODY)
    assert post(machine, "signed", content, headers).status_code == 200
    calls().clear()
    body = refused(post(machine, "signed", content, headers))
    assert "already delivered" in body["error"]["message"]


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(machine: Any, missing: str) -> None:
    content, headers = signed(BODY)
    del headers[missing]
    body = refused(post(machine, "signed", content, headers))
    assert missing in body["error"]["message"]


@pytest.mark.parametrize(
    "signature", ["v1", "v1,%%%not-base64", "v2,abc=", "garbage", "v1," + "A" * 2000]
)
def test_a_malformed_signature_is_refused(machine: Any, signature: str) -> None:
    content, headers = signed(BODY)
    headers["webhook-signature"] = signature
    refused(post(machine, "signed", content, headers))


def test_a_body_over_the_limit_is_413_before_any_signature_check(
    machine: Any, function_env: dict[str, str]
) -> None:
    big = {"pad": "x" * int(function_env["MAX_BODY_BYTES"])}
    content, headers = signed(big)
    refused(post(machine, "signed", content, headers), 413, "PAYLOAD_TOO_LARGE")


def test_a_signed_body_that_is_not_json_is_400(machine: Any) -> None:
    content, headers = signed(b"{not json")
    refused(post(machine, "signed", content, headers), 400, "INVALID_JSON")


def test_a_body_that_is_not_utf8_is_refused(machine: Any) -> None:
    _, headers = signed(b'{"a": 1}')
    refused(post(machine, "signed", b'{"a": "\xff\xfe"}', headers))


@pytest.mark.parametrize(
    "content",
    [b'{"a": "\xff\xfe"}', b"\xef\xbb\xbf{}", b'{"a": "\xed\xa0\x80"}', b"{not json", b"[1,"],
    ids=["not-utf8", "bom", "encoded-surrogate", "not-json", "truncated"],
)
def test_a_validly_signed_body_that_is_not_json_is_400_in_the_hook_format(
    machine: Any, content: bytes
) -> None:
    """The sender holds the secret: the body is its mistake, said as 400 INVALID_JSON with the
    hook contract's http_code, after the signature (over the exact bytes) was verified."""
    _, headers = signed(content)
    body = refused(post(machine, "signed", content, headers), 400, "INVALID_JSON")
    assert body["error"]["http_code"] == 400 and body["error"]["message"]


def test_a_body_that_is_not_utf8_is_still_verified(machine: Any) -> None:
    """Bytes that are not UTF-8 are verified over the bytes: tampered, stale or replayed, 401."""
    content = b'{"a": "\xff\xfe"}'
    _, headers = signed(content)
    refused(post(machine, "signed", content.replace(b"\xfe", b"\xfd"), headers))
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    _, headers = signed(content, at=stale)
    assert "5-minute" in refused(post(machine, "signed", content, headers))["error"]["message"]
    _, headers = signed(content)
    refused(post(machine, "signed", content, headers), 400, "INVALID_JSON")
    body = refused(post(machine, "signed", content, headers))
    assert "already delivered" in body["error"]["message"]


def test_a_body_with_another_content_type_is_415(machine: Any) -> None:
    content, headers = signed(BODY)
    headers["Content-Type"] = "text/plain"
    refused(post(machine, "signed", content, headers), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_user_token_is_not_a_signature(machine: Any, served: Served) -> None:
    content, headers = signed(BODY)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        del headers[name]
    headers["Authorization"] = f"Bearer {served.token('11111111-1111-1111-1111-111111111111')}"
    refused(post(machine, "signed", content, headers))


# ---- the database webhooks' shared secret ---------------------------------------------------


@pytest.mark.parametrize("secret", [DEV_DB_WEBHOOK_SECRET, DEV_SERVICE_ROLE_KEY])
def test_the_webhook_secret_or_the_service_role_key_is_accepted(machine: Any, secret: str) -> None:
    response = post(
        machine,
        "secret",
        b'{"type": "INSERT"}',
        {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"received": {"type": "INSERT"}, "role": "service_role"}
    assert len(calls()) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-secret",
        f"Basic {DEV_DB_WEBHOOK_SECRET}",
        f"Bearer {DEV_DB_WEBHOOK_SECRET}x",
        f"Bearer {DEV_DB_WEBHOOK_SECRET[:-1]}",
        f"Bearer {DEV_PUBLISHABLE_KEY}",  # the project's public keys are no secret
        f"Bearer {DEV_ANON_KEY}",
    ],
)
def test_a_wrong_or_missing_secret_is_refused(machine: Any, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = refused(post(machine, "secret", b'{"type": "INSERT"}', headers))
    assert "http_code" not in body["error"]  # an envelope route: the plain envelope
