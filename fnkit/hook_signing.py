"""Sign a call as Supabase does, for `fnkit hook send` and the /docs page's "try it".

Auth hooks: Standard Webhooks headers made by the reference library with the first secret of
AUTH_HOOK_SECRETS (the local development secret unless set). Database webhooks: the bearer
DB_WEBHOOK_SECRET. Dev tooling only, never bundled with a function.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid


def auth_hook_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` for these exact bytes."""
    from standardwebhooks import Webhook

    from fnkit.devenv import DEV_AUTH_HOOK_SECRET

    if secret is None:
        configured = os.environ.get("AUTH_HOOK_SECRETS") or DEV_AUTH_HOOK_SECRET
        secret = configured.split("|")[0].strip()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = dt.datetime.now(dt.UTC)
    signature = Webhook(secret.removeprefix("v1,")).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def database_webhook_headers(secret: str | None = None) -> dict[str, str]:
    from fnkit.devenv import DEV_DB_WEBHOOK_SECRET

    secret = secret or os.environ.get("DB_WEBHOOK_SECRET") or DEV_DB_WEBHOOK_SECRET
    return {"Authorization": f"Bearer {secret}"}
