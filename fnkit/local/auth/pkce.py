"""PKCE for emailed links (`flow_state.go`, `pkce.go`): the link yields a code, not a session.

A client in PKCE mode (supabase-js in SSR apps, supabase-py with `flow_type="pkce"`) sends a
`code_challenge` with sign-up, recovery or OTP. GoTrue then keeps a flow state for the user,
prefixes the emailed token with `pkce_`, and on following the link redirects with
`?code=<auth code>` instead of tokens; `POST /token?grant_type=pkce` with that code and the
`code_verifier` (S256 or plain) answers the session, once, within 5 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

from fnkit.local.auth import store
from fnkit.local.auth.errors import AuthError, bad_request, not_found

__all__ = ["PREFIX", "exchange", "issue_auth_code", "start_flow", "wants_pkce"]

PREFIX = "pkce_"
FLOW_STATE_EXPIRY_S = 300
# The authentication method a flow records, by the emailed token's kind
# (models.AuthenticationMethod).
METHODS = {"signup": "email/signup", "recovery": "recovery", "magiclink": "magiclink",
           "invite": "invite", "email_change": "email_change"}  # fmt: skip


def wants_pkce(body: dict[str, Any]) -> tuple[str, str] | None:
    """(challenge, method) when the request starts a PKCE flow; GoTrue's validatePKCEParams."""
    challenge, method = body.get("code_challenge") or "", body.get("code_challenge_method") or ""
    if not challenge and not method:
        return None
    if not challenge or not method:
        raise bad_request(
            "validation_failed",
            "PKCE flow requires code_challenge_method and code_challenge",
        )
    if str(method).lower() not in ("s256", "plain"):
        raise bad_request("validation_failed", f"code challenge method {method} not supported")
    return str(challenge), str(method).lower()


def start_flow(conn: store.Conn, user_id: str, kind: str, pkce: tuple[str, str]) -> None:
    challenge, method = pkce
    conn.execute(
        "insert into auth.flow_state (id, user_id, auth_code, code_challenge_method,"
        " code_challenge, provider_type, created_at, updated_at, authentication_method)"
        " values (%s, %s, %s, %s, %s, 'email', now(), now(), %s)",
        (uuid.uuid4(), user_id, str(uuid.uuid4()), method, challenge, METHODS[kind]),
    )


def issue_auth_code(conn: store.Conn, user_id: str, kind: str) -> str:
    """issueAuthCode: the user's latest flow for this kind, its code issued now."""
    row = conn.execute(
        "update auth.flow_state set auth_code_issued_at = now(), updated_at = now()"
        " where id = (select id from auth.flow_state where user_id = %s"
        " and authentication_method = %s order by created_at desc limit 1)"
        " returning auth_code",
        (user_id, METHODS.get(kind, kind)),
    ).fetchone()
    if row is None:
        raise bad_request("flow_state_not_found", "No associated flow state found.")
    return str(row["auth_code"])


def _matches(challenge: str, method: str, verifier: str) -> bool:
    if method == "s256":
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return hmac.compare_digest(expected, challenge)
    return hmac.compare_digest(verifier, challenge)


def exchange(conn: store.Conn, auth_code: str, verifier: str) -> tuple[str, str]:
    """The PKCE grant: (user id, authentication method) for a valid code, the flow spent."""
    if not auth_code or not verifier:
        raise bad_request(
            "validation_failed",
            "invalid request: both auth code and code verifier should be non-empty",
        )
    flow = conn.execute(
        "select id, user_id, code_challenge, code_challenge_method::text as method,"
        " authentication_method, created_at, auth_code_issued_at from auth.flow_state"
        " where auth_code = %s for update",
        (auth_code,),
    ).fetchone()
    if flow is None or flow["user_id"] is None:
        raise not_found("flow_state_not_found", "invalid flow state, no valid flow state found")
    started = flow["auth_code_issued_at"] or flow["created_at"]
    if (store.now() - started).total_seconds() > FLOW_STATE_EXPIRY_S:
        raise AuthError(422, "flow_state_expired", "invalid flow state, flow state has expired")
    if not _matches(flow["code_challenge"] or "", flow["method"] or "", verifier):
        raise bad_request(
            "bad_code_verifier", "code challenge does not match previously saved code verifier"
        )
    conn.execute("delete from auth.flow_state where id = %s", (flow["id"],))
    return str(flow["user_id"]), str(flow["authentication_method"])
