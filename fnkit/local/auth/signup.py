"""Creating users the way every GoTrue path does: Before User Created hook, then the insert.

Sign-up, invite, OTP/magic-link sign-up and `generate_link` all create a user the same way
(`signup.go`, `invite.go`, `mail.go`): the Before User Created hook is called with the user
about to be created, outside any transaction; its refusal is the caller's answer and nothing
is written. Then the user and its email identity are inserted in one transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from fnkit.local.auth.app import Ctx
from fnkit.local.auth.hooks import call_hook, hook_metadata
from fnkit.local.auth.store import Conn
from fnkit.local.auth.users import create_user, hash_password, new_user_document

__all__ = ["before_user_created", "insert_new_user"]


def before_user_created(ctx: Ctx, email: str, user_metadata: dict[str, Any] | None) -> str:
    """Run the hook (when configured) for a user about to be created; the id to give it."""
    document = new_user_document(email, user_metadata)
    uri = ctx.config.before_user_created_uri
    if uri:
        call_hook(
            ctx.config,
            uri,
            {"metadata": hook_metadata("before-user-created", ctx.ip), "user": document},
        )
    return str(document["id"])


def insert_new_user(
    conn: Conn,
    *,
    user_id: str,
    email: str,
    password: str | None,
    user_metadata: dict[str, Any] | None,
    confirmed: bool = False,
    invited: bool = False,
) -> None:
    """The insert; without a password GoTrue stores `''` (invite, OTP sign-up)."""
    create_user(
        conn,
        user_id=user_id,
        email=email,
        password_hash=hash_password(password) if password else "",
        user_metadata=user_metadata,
        confirmed=confirmed,
        invited=invited,
    )


def random_password() -> str:
    """password.Generate(64, 10, 0, ...): GoTrue's unguessable password for admin-made users."""
    return uuid.uuid4().hex + uuid.uuid4().hex
