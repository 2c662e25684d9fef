"""Creating and changing users as GoTrue writes them: bcrypt cost 10, email identities.

A new user gets what `models.NewUser` and `signupNewUser` give it: a v4 id, the instance id
GoTrue uses (all zeros), aud and role `authenticated`, the lower-cased email, `''` in the
token columns (GoTrue never writes NULL there), app metadata `{"provider", "providers"}`, and
an identity `(provider_id = user id, provider 'email', identity_data {sub, email,
email_verified, phone_verified})`. Passwords are checked as `checkPasswordStrength` checks
them (length 6 by default, at most 72 bytes, bcrypt's limit).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import bcrypt
from psycopg.types.json import Jsonb

from fnkit.local.auth.errors import AuthError, bad_request
from fnkit.local.auth.store import INSTANCE_ID, Conn, now

__all__ = [
    "check_password",
    "check_password_strength",
    "confirm_email",
    "create_user",
    "hash_password",
    "validate_email",
]

BCRYPT_COST = 10
MIN_PASSWORD_LENGTH = 6  # supabase/config.toml's minimum_password_length default
MAX_PASSWORD_LENGTH = 72
# checkmail.ValidateFormat's pattern, as GoTrue uses it.
_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)


def hash_password(password: str) -> str:
    """A `$2a$10$` hash, as Go's bcrypt writes (Python's writes `$2b$`, same algorithm)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST, prefix=b"2a"))
    return hashed.decode()


def check_password(password: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def check_password_strength(password: str) -> None:
    """GoTrue's checkPasswordStrength (no required character classes, no HIBP)."""
    if len(password.encode()) > MAX_PASSWORD_LENGTH:  # Go's len: bytes, bcrypt's limit
        raise bad_request(
            "validation_failed", f"Password cannot be longer than {MAX_PASSWORD_LENGTH} characters"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
            ["length"],
        )


def validate_email(email: str) -> str:
    if not email:
        raise bad_request("validation_failed", "An email address is required")
    if len(email) > 255:
        raise bad_request("validation_failed", "An email address is too long")
    if not _EMAIL.fullmatch(email):  # `$` alone would let a trailing newline through
        raise bad_request("validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def new_user_document(
    email: str, user_metadata: dict[str, Any] | None, *, user_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """The user about to be created, as the Before User Created hook receives it."""
    moment = now().isoformat().replace("+00:00", "Z")
    return {
        "id": str(user_id or uuid.uuid4()),
        "aud": "authenticated",
        "role": "",
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": user_metadata or {},
        "identities": [],
        "created_at": moment,
        "updated_at": moment,
        "is_anonymous": False,
    }


def create_user(
    conn: Conn,
    *,
    user_id: str,
    email: str,
    password_hash: str,
    user_metadata: dict[str, Any] | None = None,
    app_metadata: dict[str, Any] | None = None,
    role: str = "authenticated",
    confirmed: bool = False,
    invited: bool = False,
) -> None:
    """Insert the user and its email identity (inside the caller's transaction)."""
    moment = now()
    app = {"provider": "email", "providers": ["email"], **(app_metadata or {})}
    conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password,"
        " email_confirmed_at, invited_at, confirmation_token, recovery_token,"
        " email_change_token_new, email_change, email_change_token_current, phone_change,"
        " phone_change_token, reauthentication_token, raw_app_meta_data, raw_user_meta_data,"
        " is_super_admin, created_at, updated_at, is_sso_user, is_anonymous)"
        " values (%s, %s, 'authenticated', %s, %s, %s, %s, %s, '', '', '', '', '', '', '', '',"
        " %s, %s, null, %s, %s, false, false)",
        (
            INSTANCE_ID,
            user_id,
            role,
            email,
            password_hash,
            moment if confirmed else None,
            moment if invited else None,
            Jsonb(app),
            Jsonb(user_metadata or {}),
            moment,
            moment,
        ),
    )
    identity_data: dict[str, Any] = {
        "sub": user_id,
        "email": email,
        "email_verified": confirmed,
        "phone_verified": False,
    }
    for key, value in (user_metadata or {}).items():
        identity_data.setdefault(key, value)
    conn.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider,"
        " last_sign_in_at, created_at, updated_at) values (%s, %s, %s, 'email', %s, %s, %s)",
        (user_id, user_id, Jsonb(identity_data), moment, moment, moment),
    )


def confirm_email(conn: Conn, user_id: Any, *, verify_identity: bool = False) -> None:
    """`user.Confirm`: confirmed now, token spent, `email_verified` in the user metadata;
    a confirmation link (`signupVerify`) also marks the email identity verified."""
    conn.execute(
        "update auth.users set email_confirmed_at = now(), confirmation_token = '',"
        " raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb)"
        " || '{\"email_verified\": true}'::jsonb, updated_at = now() where id = %s",
        (str(user_id),),
    )
    conn.execute("delete from auth.one_time_tokens where user_id = %s", (str(user_id),))
    if verify_identity:
        conn.execute(
            "update auth.identities set identity_data = identity_data"
            " || '{\"email_verified\": true}'::jsonb, updated_at = now()"
            " where user_id = %s and provider = 'email'",
            (str(user_id),),
        )


def is_banned(row: Any) -> bool:
    banned = row["banned_until"]
    return banned is not None and banned > now()


def require_not_banned(row: Any, status: int = 400) -> None:
    if is_banned(row):
        raise AuthError(status, "user_banned", "User is banned")


def create_anonymous_user(conn: Conn, user_id: str, user_metadata: dict[str, Any]) -> None:
    """SignupAnonymously's user: no email, no password, no identity, `is_anonymous`."""
    moment = now()
    conn.execute(
        "insert into auth.users (instance_id, id, aud, role, encrypted_password,"
        " confirmation_token, recovery_token, email_change_token_new, email_change,"
        " email_change_token_current, phone_change, phone_change_token, reauthentication_token,"
        " raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_sso_user,"
        " is_anonymous) values (%s, %s, 'authenticated', 'authenticated', '', '', '', '', '',"
        " '', '', '', '', '{}'::jsonb, %s, %s, %s, false, true)",
        (INSTANCE_ID, user_id, Jsonb(user_metadata), moment, moment),
    )
