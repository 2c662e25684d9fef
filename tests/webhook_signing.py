"""Sign requests as Supabase Auth does, with the Standard Webhooks reference library.

The library signs text; the specification signs bytes. Bodies that are not UTF-8 (hostile
tests: a sender holding the secret who sends garbage) are signed here with the specification's
HMAC-SHA256 over `id.timestamp.body`, written out independently of the server's code.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
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
    try:
        signature = Webhook(secret.removeprefix("v1,")).sign(msg_id, at, data.decode())
    except UnicodeDecodeError:
        key = base64.b64decode(secret.removeprefix("v1,").removeprefix("whsec_"))
        content = f"{msg_id}.{int(at.timestamp())}.".encode() + data
        digest = hmac.new(key, content, hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(digest).decode()
    return data, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
