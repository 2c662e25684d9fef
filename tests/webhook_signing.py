"""Sign requests as Supabase Auth does, with the Standard Webhooks reference library."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from standardwebhooks import Webhook

from fnkit.devenv import DEV_AUTH_HOOK_SECRET


def signed(
    body: Any,
    *,
    secret: str = DEV_AUTH_HOOK_SECRET,
    msg_id: str | None = None,
    at: dt.datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body bytes and the headers a Standard Webhooks sender would send."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or dt.datetime.now(dt.UTC)
    signature = Webhook(secret.removeprefix("v1,")).sign(msg_id, at, data.decode())
    return data, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
