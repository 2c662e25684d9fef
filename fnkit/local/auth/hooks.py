"""Auth hooks called over HTTP as Supabase Auth calls them (`internal/hooks/hookshttp`).

A POST of the hook's JSON, signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
`webhook-signature`) with each of `LocalConfig.hook_secrets` as GoTrue signs (one `v1,...`
per secret, joined by `", "`, so a rotation's two secrets give two), waited on for 5 seconds
(`LocalConfig.extra` `auth_hook_timeout_s` and `auth_hook_backoff_s` change the times).
What the answer means is GoTrue's, so a hook behaves here as it will on Supabase:

- 200/202 with `application/json`: the body, unless it is `{"error": {"http_code", "message"}}`,
  which becomes the caller's error with that status (500 without one) and no error code;
  204: no body. A non-JSON content type is 400 `hook_payload_invalid_content_type`.
- 429/503 with `Retry-After`: tried again (three attempts in all), else 500.
- Any other status (400, 401, 403, 404, 5xx): 500 with GoTrue's message; the hook's own
  refusal only reaches the client in a 200's `{"error": ...}`.
- No answer within the time: 422 `hook_timeout`; connection refused on every attempt
  (2 s apart): 422 `hook_timeout_after_retry`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from fnkit.local.auth.errors import AuthError, unprocessable
from fnkit.local.config import LocalConfig

__all__ = ["call_hook", "hook_metadata"]

TIMEOUT_S = 5.0
RETRIES = 3
BACKOFF_S = 2.0
RESPONSE_LIMIT = 200 * 1024


def hook_metadata(name: str, ip_address: str) -> dict[str, Any]:
    """The `metadata` every hook input carries (v0hooks.Metadata)."""
    moment = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return {"uuid": str(uuid.uuid4()), "time": moment, "name": name, "ip_address": ip_address}


def _internal(message: str) -> AuthError:
    return AuthError(500, "unexpected_failure", message)


def _timeout_s(config: LocalConfig) -> float:
    return float(config.extra.get("auth_hook_timeout_s", TIMEOUT_S))


def _backoff_s(config: LocalConfig) -> float:
    return float(config.extra.get("auth_hook_backoff_s", BACKOFF_S))


def _headers(config: LocalConfig, payload: bytes) -> dict[str, str]:
    """generateSignatures: one `v1,<base64>` per configured secret, joined by `", "`."""
    secrets = [s.strip() for s in config.hook_secrets.split("|") if s.strip()]
    if not secrets or not all(s.startswith("v1,") for s in secrets):
        raise _internal("Error generating signatures: invalid signature format")
    msg_id = str(uuid.uuid4())
    moment = dt.datetime.now(dt.UTC)
    signatures = [
        Webhook(s.removeprefix("v1,")).sign(msg_id, moment, payload.decode()) for s in secrets
    ]
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": ", ".join(signatures),
        "Accept-Encoding": "identity",
    }


def call_hook(config: LocalConfig, uri: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """POST the hook input; its JSON answer (None for 204), or the error GoTrue would raise."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    timeout = _timeout_s(config)
    deadline = time.monotonic() + timeout
    timeout_error = unprocessable(
        "hook_timeout", f"Failed to reach hook within maximum time of {timeout:f} seconds"
    )
    with httpx.Client(timeout=timeout) as client:
        for attempt in range(RETRIES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout_error
            try:
                response = client.post(
                    uri, content=body, headers=_headers(config, body), timeout=remaining
                )
            except httpx.TimeoutException as exc:
                raise timeout_error from exc
            except httpx.TransportError:
                if attempt < RETRIES - 1:
                    backoff = _backoff_s(config)
                    if time.monotonic() + backoff >= deadline:
                        raise timeout_error from None
                    time.sleep(backoff)
                    continue
                raise unprocessable(
                    "hook_timeout_after_retry", "Failed to reach hook after maximum retries"
                ) from None
            outcome = _read(response)
            if isinstance(outcome, str):  # "retry": a 429/503 that said when
                continue
            return outcome
    raise _internal("Service currently unavailable due to hook")


def _read(response: httpx.Response) -> dict[str, Any] | str | None:
    status = response.status_code
    if status == 204:
        return None
    if status in (200, 202):
        content_type = response.headers.get("content-type", "")
        if not content_type:
            raise AuthError(
                400,
                "hook_payload_invalid_content_type",
                "Invalid Content-Type: Missing Content-Type header",
            )
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise AuthError(
                400,
                "hook_payload_invalid_content_type",
                f"Invalid JSON response. Received content-type: {content_type}",
            )
        if len(response.content) > RESPONSE_LIMIT:
            raise unprocessable(
                "hook_payload_over_size_limit",
                f"Payload size exceeded size limit of {RESPONSE_LIMIT} bytes",
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise _internal("Error unmarshaling JSON output.") from exc
        _raise_hook_error(answer)
        return answer if isinstance(answer, dict) else {}
    if status in (429, 503):
        if response.headers.get("retry-after"):
            return "retry"
        raise _internal("Service currently unavailable due to hook")
    if status == 400:
        raise _internal("Invalid payload sent to hook")
    if status == 401:
        raise _internal("Hook requires authorization token")
    raise _internal(f"Unexpected status code returned from hook: {status}")


def _raise_hook_error(answer: Any) -> None:
    """hookserrors.Check: `{"error": {"message"}}` refuses, with its http_code or 500."""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), dict):
        return
    message = answer["error"].get("message")
    if not message:
        return
    code = answer["error"].get("http_code")
    raise AuthError(code if isinstance(code, int) and code else 500, "", str(message))
