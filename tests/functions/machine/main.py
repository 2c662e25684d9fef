"""machine: a test-only function behind each machine caller; it records every call it gets,
so a test can prove that a refused request never reached the handler."""

from __future__ import annotations

from typing import Any

from shared import App, Request
from shared.shared_secret import SharedSecret
from shared.standard_webhooks import StandardWebhook

app = App("machine")

CALLS: list[dict[str, Any]] = []


@app.post("/signed", auth=StandardWebhook(), answer="auth_hook", rate=None, idempotent=False)
def signed(request: Request) -> dict[str, Any]:
    """Echo the verified JSON body in the Auth hook format."""
    CALLS.append({"route": "signed", "json": request.json})
    return {"received": request.json}


@app.post("/secret", auth=SharedSecret(), rate=None, idempotent=False)
def secret(request: Request) -> dict[str, Any]:
    CALLS.append({"route": "secret", "json": request.json})
    return {"received": request.json, "role": request.claims.role if request.claims else None}


handler = app.handler
