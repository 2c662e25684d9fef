"""The local Auth's reads of `auth.*`, and users as GoTrue's JSON shows them.

Every request opens its own connection (as the superuser of `LocalConfig.database_url`, as
GoTrue's own admin role) and writes in one transaction; a local server sees a handful of
requests a second, and no pool thread outlives a test database. Rows are read with dict rows
and turned into the JSON of `internal/models/user.go`: optional timestamps omitted when
null, `factors` omitted when empty, `identities` always present.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from fnkit.local.config import LocalConfig

__all__ = [
    "Conn",
    "connect",
    "find_user_by_email",
    "load_user",
    "now",
    "timestamp",
    "user_json",
]

Conn = psycopg.Connection[DictRow]
INSTANCE_ID = uuid.UUID(int=0)
USER_COLUMNS = (
    "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, phone,"
    " phone_confirmed_at, confirmation_token, confirmation_sent_at, confirmed_at,"
    " recovery_token, recovery_sent_at, email_change_token_current, email_change_token_new,"
    " email_change, email_change_sent_at, email_change_confirm_status, phone_change,"
    " phone_change_sent_at, reauthentication_sent_at, last_sign_in_at, raw_app_meta_data,"
    " raw_user_meta_data, created_at, updated_at, banned_until, deleted_at, is_anonymous,"
    " is_sso_user"
)
_OPTIONAL_TIMES = (
    "email_confirmed_at",
    "invited_at",
    "phone_confirmed_at",
    "confirmation_sent_at",
    "confirmed_at",
    "recovery_sent_at",
    "email_change_sent_at",
    "phone_change_sent_at",
    "reauthentication_sent_at",
    "last_sign_in_at",
)


def connect(config: LocalConfig) -> Conn:
    """A connection in a transaction of its own (commit or roll back, then close)."""
    return psycopg.connect(config.database_url, row_factory=dict_row, prepare_threshold=None)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp(value: dt.datetime | None) -> str | None:
    """A time as Go's encoding/json writes it (RFC 3339, `Z` for UTC)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def load_user(conn: Conn, user_id: uuid.UUID | str, *, lock: bool = False) -> DictRow | None:
    suffix = " for update" if lock else ""
    return conn.execute(
        f"select {USER_COLUMNS} from auth.users where id = %s{suffix}", (str(user_id),)
    ).fetchone()


def find_user_by_email(conn: Conn, email: str, aud: str = "authenticated") -> DictRow | None:
    """As GoTrue's FindUserByEmailAndAudience: case-insensitive, SSO users apart."""
    return conn.execute(
        f"select {USER_COLUMNS} from auth.users"
        " where instance_id = %s and lower(email) = lower(%s) and aud = %s"
        " and is_sso_user = false order by created_at limit 1",
        (INSTANCE_ID, email, aud),
    ).fetchone()


def identities_json(conn: Conn, user_id: Any) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select id, provider_id, user_id, identity_data, provider, last_sign_in_at,"
        " created_at, updated_at, email from auth.identities where user_id = %s"
        " order by created_at, id",
        (str(user_id),),
    ).fetchall()
    out = []
    for row in rows:
        item: dict[str, Any] = {
            "identity_id": str(row["id"]),
            "id": row["provider_id"],
            "user_id": str(row["user_id"]),
            "identity_data": row["identity_data"],
            "provider": row["provider"],
            "last_sign_in_at": timestamp(row["last_sign_in_at"]),
            "created_at": timestamp(row["created_at"]),
            "updated_at": timestamp(row["updated_at"]),
        }
        if row["email"]:
            item["email"] = row["email"]
        out.append({k: v for k, v in item.items() if v is not None or k == "identity_data"})
    return out


def factors_json(conn: Conn, user_id: Any) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select id, friendly_name, factor_type::text as factor_type, status::text as status,"
        " created_at, updated_at, phone, last_challenged_at from auth.mfa_factors"
        " where user_id = %s order by created_at, id",
        (str(user_id),),
    ).fetchall()
    out = []
    for row in rows:
        item: dict[str, Any] = {
            "id": str(row["id"]),
            "status": row["status"],
            "factor_type": row["factor_type"],
            "created_at": timestamp(row["created_at"]),
            "updated_at": timestamp(row["updated_at"]),
            "phone": row["phone"] or "",
            "last_challenged_at": timestamp(row["last_challenged_at"]),
        }
        if row["friendly_name"]:
            item["friendly_name"] = row["friendly_name"]
        out.append(item)
    return out


def user_json(conn: Conn, row: DictRow) -> dict[str, Any]:
    """The user as GoTrue answers it (`models.User`'s JSON tags)."""
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "aud": row["aud"] or "",
        "role": row["role"] or "",
        "email": row["email"] or "",
    }
    for name in _OPTIONAL_TIMES[:2]:
        if row[name] is not None:
            body[name] = timestamp(row[name])
    body["phone"] = row["phone"] or ""
    for name in _OPTIONAL_TIMES[2:]:
        if row[name] is not None:
            body[name] = timestamp(row[name])
    if row["email_change"]:
        body["new_email"] = row["email_change"]
    if row["phone_change"]:
        body["new_phone"] = row["phone_change"]
    body["app_metadata"] = row["raw_app_meta_data"] or {}
    body["user_metadata"] = row["raw_user_meta_data"] or {}
    factors = factors_json(conn, row["id"])
    if factors:
        body["factors"] = factors
    body["identities"] = identities_json(conn, row["id"])
    body["created_at"] = timestamp(row["created_at"])
    body["updated_at"] = timestamp(row["updated_at"])
    if row["banned_until"] is not None:
        body["banned_until"] = timestamp(row["banned_until"])
    if row["deleted_at"] is not None:
        body["deleted_at"] = timestamp(row["deleted_at"])
    body["is_anonymous"] = bool(row["is_anonymous"])
    return body
