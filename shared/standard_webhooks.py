"""`StandardWebhook`: the machine caller for Supabase Auth's HTTP hooks (Standard Webhooks).

Supabase Auth signs each hook call with `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with a secret it
shows as `v1,whsec_<base64>`. This caller checks exactly the bytes received, before anything
parses them, against every configured secret (`AUTH_HOOK_SECRETS`, `|`-separated, so a new
secret can be added before the old one is removed: rotation without downtime).

Why the `standardwebhooks` package: it is the specification's reference implementation, has
no dependencies, imports only the standard library (no cold-start cost to speak of) and
compares with `hmac.compare_digest`. Its 5-minute timestamp tolerance is the one we want (the
specification's default, and the window Supabase Auth's retries stay inside). What it does not
do is done here: accept several secrets, turn its assorted exceptions (a signature without a
comma, bad base64) into one clean 401, read the signature list as Supabase Auth writes it,
and refuse a replayed `webhook-id`.

Signature lists: during a rotation Supabase Auth signs with every configured secret and joins
the signatures with ", " (GoTrue's `generateSignatures`), while the specification and the
library separate them by spaces alone; the library then reads `v1,<a>,` and fails. The list is
read here as whitespace-separated signatures, each without a trailing comma
(`_signature_list`), before either check sees it.

One gap of the library: it decodes the body as UTF-8 before it signs it again, while the
specification signs the bytes. A body that is not UTF-8 is never JSON, but when its signature
is valid the sender holds the secret, and the truthful answer is 400 INVALID_JSON (in the
hook's format), not a 401 that sends its author looking at secrets. Such a body (only such a
body) is verified here over its bytes: the same HMAC-SHA256 over `id.timestamp.body`, the same
5-minute window, `hmac.compare_digest` (`_verify_bytes`).

Replays: a valid call can be captured and sent again inside the tolerance window. Each
verified `webhook-id` is remembered in Upstash for twice the tolerance, which covers every
timestamp the window accepts (`SET NX` through `shared.upstash_rest`, so a hook's first call
imports no Redis client); a second call with the same id is refused.
Supabase Auth gives each attempt (retries included) a new id, so only a replay is refused.
When Upstash cannot be reached the call is refused with 503 (fail closed) unless the caller
was built with `replay_fail_open=True`; either way it is logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from typing import TYPE_CHECKING, Any

from shared.auth import SERVICE, Claims
from shared.errors import Unauthenticated, Unavailable
from shared.logs import log

if TYPE_CHECKING:
    from standardwebhooks import Webhook

    from shared.request import Request

TOLERANCE_S = 5 * 60
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_MAX_HEADER = 1024


class StandardWebhook:
    """Admits a request signed with one of `AUTH_HOOK_SECRETS`; it then acts as service_role."""

    def __init__(
        self, *, scheme_name: str = "standardWebhooks", replay_fail_open: bool = False
    ) -> None:
        self.scheme_name = scheme_name
        self.replay_fail_open = replay_fail_open
        self._webhooks: tuple[tuple[str, ...], list[tuple[Webhook, bytes]]] | None = None
        self._lock = threading.Lock()

    def authenticate(self, request: Request) -> Claims:
        webhooks = self._verifiers(request.settings.auth_hook_secrets)
        values = {name: request.headers.get(name) or "" for name in HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise Unauthenticated(f"A signed webhook is required: {', '.join(missing)} missing")
        if any(len(value) > _MAX_HEADER for value in values.values()):
            raise Unauthenticated("A webhook header is too long")
        values["webhook-signature"] = _signature_list(values["webhook-signature"])
        _check_signature(webhooks, request.raw_body, values)
        self._refuse_replay(request, values["webhook-id"])
        return SERVICE

    def security_scheme(self) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "webhook-signature",
            "description": (
                "Standard Webhooks (https://www.standardwebhooks.com), as Supabase Auth signs "
                "its HTTP hooks: `webhook-id`, `webhook-timestamp` (within 5 minutes) and "
                "`webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` keyed with "
                "a secret of AUTH_HOOK_SECRETS (`v1,whsec_<base64>`). Each webhook-id is "
                "accepted once."
            ),
            "x-standard-webhooks": {"tolerance_s": TOLERANCE_S, "headers": list(HEADERS)},
        }

    def _verifiers(self, secrets: tuple[str, ...]) -> list[tuple[Webhook, bytes]]:
        """One reference verifier (and its key, for `_verify_bytes`) per secret, built once."""
        if not secrets:
            raise Unavailable("This route needs the setting AUTH_HOOK_SECRETS")
        cached = self._webhooks
        if cached is not None and cached[0] == secrets:
            return cached[1]
        from standardwebhooks import Webhook

        with self._lock:
            built = [(Webhook(secret.removeprefix("v1,")), _key(secret)) for secret in secrets]
            self._webhooks = (secrets, built)
        return built

    def _refuse_replay(self, request: Request, webhook_id: str) -> None:
        from shared.upstash_rest import get_upstash

        digest = hashlib.sha256(webhook_id.encode("utf-8", "surrogateescape")).hexdigest()
        key = f"webhooks:seen:{request.function}:{digest}"
        try:
            first = get_upstash(request.settings).command(
                "SET", key, "1", "NX", "EX", 2 * TOLERANCE_S + 60
            )
        except Exception as exc:
            log(
                "ERROR",
                "webhook replay check unavailable",
                request_id=request.request_id,
                function=request.function,
                fail_open=self.replay_fail_open,
                exception=type(exc).__name__,
            )
            if self.replay_fail_open:
                return
            raise Unavailable("The webhook replay check is unavailable") from None
        if not first:
            raise Unauthenticated("This webhook-id was already delivered")


def _signature_list(header: str) -> str:
    """`v1,<a>, v1,<b>` (Supabase Auth) or `v1,<a> v1,<b>` (the specification) → the latter."""
    return " ".join(part.rstrip(",") for part in header.split())


def _key(secret: str) -> bytes:
    """The HMAC key of a `v1,whsec_<base64>` secret, decoded as the reference library does."""
    encoded = secret.removeprefix("v1,").removeprefix("whsec_")
    return base64.b64decode(encoded + "==")


def _check_signature(
    webhooks: list[tuple[Webhook, bytes]], body: bytes, headers: dict[str, str]
) -> None:
    """Pass when one secret verifies; else one 401 whose message says what was wrong."""
    from standardwebhooks import WebhookVerificationError

    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        _verify_bytes([key for _, key in webhooks], body, headers)
        return
    reason = "The webhook signature does not match"
    for webhook, _ in webhooks:
        try:
            webhook.verify(body, headers, json_parse=False)
            return
        except WebhookVerificationError as exc:
            text = str(exc)
            if "timestamp" in text or "Invalid Signature Headers" in text:
                raise Unauthenticated(
                    "The webhook timestamp is missing, malformed or outside the 5-minute window"
                ) from None
        except (ValueError, TypeError):  # not UTF-8, a signature without "v1,", bad base64
            reason = "The webhook signature is malformed or does not match"
    raise Unauthenticated(reason)


def _verify_bytes(keys: list[bytes], body: bytes, headers: dict[str, str]) -> None:
    """The reference library's check over bytes that are not UTF-8 (see the module's doc)."""
    stamp = headers["webhook-timestamp"]
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_S:
        raise Unauthenticated(
            "The webhook timestamp is missing, malformed or outside the 5-minute window"
        )
    signed = f"{headers['webhook-id']}.{stamp}.".encode("utf-8", "surrogateescape") + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    matched = False
    for candidate in headers["webhook-signature"].split(" "):
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            presented = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        for digest in expected:  # every pair is compared: the time says nothing about which
            matched |= hmac.compare_digest(digest, presented)
    if not matched:
        raise Unauthenticated("The webhook signature is malformed or does not match")
