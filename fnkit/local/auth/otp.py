"""One-time email tokens as GoTrue makes them, and the emails that carry them.

A 6-digit OTP is drawn; its hash `sha224(email + otp)` (hex) goes in the user's token column
(`confirmation_token`, `recovery_token`, `email_change_token_new`/`_current`), a row of
`auth.one_time_tokens`, and the link `<issuer>/verify?token=<hash>&type=<kind>&redirect_to=..`.
`POST /verify` accepts either the hash (`token_hash`) or the email and OTP; both expire after
`OTP_EXPIRY_S` (supabase/config.toml's `otp_expiry`, 3600 s).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from urllib.parse import urlencode

from fnkit.local.auth.mail import Inbox
from fnkit.local.auth.store import Conn
from fnkit.local.config import LocalConfig

__all__ = ["OTP_EXPIRY_S", "send_token", "token_hash"]

OTP_EXPIRY_S = 3600
OTP_LENGTH = 6
# kind → (column in auth.users, its *_sent_at column, one_time_token_type, subject)
KINDS = {
    "signup": ("confirmation_token", "confirmation_sent_at", "confirmation_token",
               "Confirm Your Email"),
    "invite": ("confirmation_token", "confirmation_sent_at", "confirmation_token",
               "You have been invited"),
    "magiclink": ("recovery_token", "recovery_sent_at", "recovery_token", "Your Magic Link"),
    "recovery": ("recovery_token", "recovery_sent_at", "recovery_token", "Reset Your Password"),
    "email_change_new": ("email_change_token_new", "email_change_sent_at",
                         "email_change_token_new", "Confirm Email Change"),
    "email_change_current": ("email_change_token_current", "email_change_sent_at",
                             "email_change_token_current", "Confirm Email Change"),
    "reauthentication": ("reauthentication_token", "reauthentication_sent_at",
                         "reauthentication_token", "Confirm reauthentication"),
}  # fmt: skip


def token_hash(email: str, otp: str) -> str:
    return hashlib.sha224((email + otp).encode()).hexdigest()


def send_token(
    conn: Conn,
    config: LocalConfig,
    inbox: Inbox,
    *,
    user_id: str,
    email: str,
    kind: str,
    redirect_to: str | None = None,
    deliver: bool = True,
    pkce: bool = False,
) -> dict[str, str]:
    """Store a fresh token of `kind` for the user and mail its link and OTP to `email`.

    Runs inside the caller's transaction, last: should the commit then fail, the mail
    holds a token that was never stored, and verifying it answers `otp_expired`."""
    column, sent_at, token_type, subject = KINDS[kind]
    otp = "".join(secrets.choice("0123456789") for _ in range(OTP_LENGTH))
    hashed = token_hash(email.lower(), otp)
    stored = f"pkce_{hashed}" if pkce else hashed  # a PKCE flow's link yields a code
    conn.execute(
        f"update auth.users set {column} = %s, {sent_at} = now(), updated_at = now() where id = %s",
        (stored, user_id),
    )
    conn.execute(
        "delete from auth.one_time_tokens where user_id = %s and token_type = %s",
        (user_id, token_type),
    )
    conn.execute(
        "insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to)"
        " values (%s, %s, %s, %s, %s)",
        (uuid.uuid4(), user_id, token_type, stored, email.lower()),
    )
    link_type = "email_change" if kind.startswith("email_change") else kind
    query = {"token": stored, "type": link_type, "redirect_to": redirect_to or config.site_url}
    link = f"{config.issuer}/verify?{urlencode(query)}"
    if deliver:  # admin generate_link hands the link back instead of mailing it
        inbox.deliver(to=email, subject=subject, kind=kind, link=link, token=hashed, otp=otp)
    return {"action_link": link, "email_otp": otp, "hashed_token": hashed}
