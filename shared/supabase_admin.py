"""Supabase Auth admin and Storage, the two services that speak only HTTP, via supabase-py.

Why a module of its own: data goes to Postgres directly (`shared.db`), but inviting users and
signing Storage URLs need Supabase's HTTP APIs as the service role. This is the one place that
holds that client and turns its failures into our envelope.

- The key: the project's secret key (`SUPABASE_SECRET_KEY`, the first one during a rotation),
  else the legacy service role key. supabase-py sends either as it is, in `apikey` and in
  `Authorization: Bearer` (its `_get_auth_headers`); Supabase's API gateway accepts an `sb_`
  key in `Authorization` because it equals `apikey`, and hands Auth and Storage a service
  role JWT in its place. So the same client works with both kinds of key.

- One client per process (per URL and key), created on first use. supabase-py costs about
  0.6 s to import, so it is imported here, lazily: functions that never call these helpers
  never load it.
- Bounded time: supabase-py's `ClientOptions` has no timeout for Auth (GoTrue builds its own
  httpx client with httpx's default) and Storage's `storage_client_timeout` is deprecated
  (default 20 s); the one knob that bounds both is `httpx_client=`, so we pass an httpx
  client with our timeouts. A slow or unreachable Supabase is a 503 after at most
  `CONNECT_TIMEOUT_S` + `TIMEOUT_S` per phase, never a hung request.
- Errors: 5xx, transport errors, timeouts and unparseable answers → 503 UNAVAILABLE; a 401
  or 403 means our key is wrong → 503 too (the caller can do nothing about it); other 4xx →
  409, 404, 429 or 422. Messages are ours: the upstream body never reaches the caller, and
  only the upstream status and error code are logged.
- No key of either kind → 503 naming SUPABASE_SECRET_KEY (and the legacy name).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from shared.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    RateLimited,
    Unavailable,
    ValidationFailed,
)
from shared.logs import log
from shared.settings import Settings

if TYPE_CHECKING:
    from supabase import Client

T = TypeVar("T")

CONNECT_TIMEOUT_S = 2.0
TIMEOUT_S = 5.0

_clients: dict[tuple[str, str], Client] = {}
_lock = threading.Lock()
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# GoTrue's codes for "this user already exists", whatever the HTTP status it sends them with.
_EXISTS = {"email_exists", "user_already_exists", "phone_exists"}
_NAMES = {"auth": "Supabase Auth", "storage": "Supabase Storage"}


def get_client(settings: Settings, purpose: str) -> Client:
    """The process's service-role client; 503 naming the setting when no key is configured."""
    key = settings.admin_key
    if not key:
        raise Unavailable(
            f"{purpose} needs SUPABASE_SECRET_KEY (or, on legacy keys,"
            " SUPABASE_SERVICE_ROLE_KEY), which is not configured"
        )
    ident = (settings.supabase_url, key)
    client = _clients.get(ident)
    if client is None:
        with _lock:
            client = _clients.get(ident)
            if client is None:
                client = _create_client(settings.supabase_url, key)
                _clients[ident] = client
    return client


def _create_client(url: str, key: str) -> Client:
    import httpx
    from supabase import ClientOptions, create_client

    http = httpx.Client(timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
    options = ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
    return create_client(url, key, options)


# ---- the calls functions make ---------------------------------------------------------------


def invite_user_by_email(settings: Settings, email: str) -> str:
    """Invite an email through Auth admin (`POST /auth/v1/invite`); the new user's id."""
    client = get_client(settings, "Inviting users by email")
    response = _call(
        "auth",
        "A user with this email address",
        lambda: client.auth.admin.invite_user_by_email(email),
    )
    user_id = getattr(getattr(response, "user", None), "id", None)
    if not user_id:
        raise Unavailable("Supabase Auth answered the invite without a user")
    return str(user_id)


def create_signed_upload_url(settings: Settings, bucket: str, path: str) -> dict[str, str]:
    """A URL the client PUTs the file to, without credentials of its own: url, token, path."""
    client = get_client(settings, "Signing Storage upload URLs")
    signed = _call(
        "storage",
        "The file",
        lambda: client.storage.from_(bucket).create_signed_upload_url(path),
        missing=_no_bucket(bucket),
    )
    return {"url": signed["signed_url"], "token": signed["token"], "path": signed["path"]}


def create_signed_url(settings: Settings, bucket: str, path: str, expires_in: int) -> str:
    """A download URL for one object, valid for `expires_in` seconds."""
    client = get_client(settings, "Signing Storage download URLs")
    signed = _call(
        "storage",
        "The file",
        lambda: client.storage.from_(bucket).create_signed_url(path, expires_in),
    )
    url = signed.get("signedURL") or signed.get("signedUrl")
    if not url:
        raise Unavailable("Supabase Storage answered without a signed URL")
    return str(url)


def remove_objects(settings: Settings, bucket: str, paths: Sequence[str]) -> None:
    """Remove objects; ones already gone are not an error (Storage answers 200 for them)."""
    client = get_client(settings, "Removing Storage objects")
    _call(
        "storage",
        "The file",
        lambda: client.storage.from_(bucket).remove(list(paths)),
        missing=_no_bucket(bucket),
    )


# ---- error mapping --------------------------------------------------------------------------


def _call(
    service: str, subject: str, call: Callable[[], T], *, missing: ApiError | None = None
) -> T:
    """Run one upstream call; `missing` replaces a 404 where it can only mean our setup."""
    try:
        return call()
    except Exception as exc:  # the boundary to Supabase: every failure gets our envelope
        error = _mapped(service, subject, exc)
        raise (missing if missing is not None and isinstance(error, NotFound) else error) from None


def _no_bucket(bucket: str) -> ApiError:
    # Signing an upload or removing objects is only "not found" when the bucket is missing.
    return Unavailable(f"Supabase Storage has no bucket named {bucket!r}")


def _mapped(service: str, subject: str, exc: Exception) -> ApiError:
    status, code = _status_and_code(exc)
    name = _NAMES[service]
    log(
        "ERROR" if status is None or status >= 500 else "WARNING",
        f"{name} call failed",
        service=service,
        upstream_status=status,
        upstream_code=code,
        error=type(exc).__name__,
    )
    if code in _EXISTS or status == 409:
        return Conflict(f"{subject} already exists in {name}")
    if status is None or status >= 500:
        return Unavailable(f"{name} is unavailable; try again later")
    if status in (401, 403):
        return Unavailable(f"{name} refused the configured API key")
    if status == 404:
        return NotFound(f"{subject} was not found in {name}")
    if status == 429:
        return RateLimited(
            f"{name} is rate limiting; try again later", headers={"Retry-After": "60"}
        )
    suffix = f" ({code})" if code else ""
    if status in (400, 422):
        return ValidationFailed(f"{name} refused the request as invalid{suffix}")
    return BadRequest(f"{name} refused the request{suffix}")


def _status_and_code(exc: Exception) -> tuple[int | None, str | None]:
    """The upstream HTTP status (the error body's `statusCode` wins, as Storage sends 400 for
    a missing object with statusCode 404) and its error code, if it is a plain identifier."""
    status = _as_status(getattr(exc, "status", None))
    if status is None:
        response: Any = getattr(exc.__cause__, "response", None)
        status = _as_status(getattr(response, "status_code", None))
    code = getattr(exc, "code", None)
    return status, code if isinstance(code, str) and _CODE.fullmatch(code) else None


def _as_status(value: Any) -> int | None:
    try:
        status = int(value)
    except (TypeError, ValueError):
        return None
    return status if 400 <= status <= 599 else None
