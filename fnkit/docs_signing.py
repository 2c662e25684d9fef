"""`POST /docs/sign` of `make dev`: the credentials Supabase would send, for the /docs page.

Machine routes refuse a call without their caller's credentials: an Auth hook wants a
Standard Webhooks signature of the exact body bytes, a database webhook the bearer secret.
So that /docs can try them, the page sends the body text it is about to send and gets back
the headers to add; it then sends that same text, which `fetch` encodes as the same UTF-8
bytes the signature covers.

Why the dev server signs and not the page's JavaScript (WebCrypto could compute the HMAC):
the secrets then never reach the browser (no secret in the page's source, its storage or a
shared screenshot), whatever `make dev` runs with; and the signature is made by the same
code as `fnkit hook send` (fnkit/hook_signing.py: the Standard Webhooks reference library,
the first secret of AUTH_HOOK_SECRETS, the local development secret by default), so there is
one signer to trust, not two.

A signing oracle is only tolerable where the secret is a development one and the caller is
the developer: this lives in the dev app only (fnkit is never bundled into a function) and
answers loopback clients only.
"""

from __future__ import annotations

from typing import Any

import flask

KINDS = ("standard-webhooks", "database-webhook")
MAX_BODY_CHARS = 1_000_000
_LOOPBACK = ("127.0.0.1", "::1")


def _refuse(status: int, message: str) -> flask.Response:
    response = flask.jsonify(error=message)
    response.status_code = status
    return response


def register(app: flask.Flask) -> None:
    @app.post("/docs/sign")
    def docs_sign() -> Any:
        """`{"kind": "standard-webhooks" | "database-webhook", "body": "<the exact text>"}`
        answers `{"headers": {...}}`: the headers Supabase would send with that body."""
        from fnkit.hook_signing import auth_hook_headers, database_webhook_headers

        if flask.request.remote_addr not in _LOOPBACK:
            return _refuse(403, "The dev server signs for loopback clients only")
        payload = flask.request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _refuse(400, 'Send a JSON object: {"kind": ..., "body": ...}')
        kind, body = payload.get("kind"), payload.get("body", "")
        if kind not in KINDS:
            return _refuse(422, f"kind must be one of {', '.join(KINDS)}")
        if not isinstance(body, str) or len(body) > MAX_BODY_CHARS:
            return _refuse(422, f"body must be a string of at most {MAX_BODY_CHARS} characters")
        if kind == "database-webhook":
            return flask.jsonify(headers=database_webhook_headers())
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: fetch would send other bytes
            return _refuse(422, "body holds a lone surrogate, which UTF-8 cannot carry")
        return flask.jsonify(headers=auth_hook_headers(data))
