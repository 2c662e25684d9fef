"""`SharedSecret`: the machine caller for Supabase database webhooks.

Supabase's database webhooks (`supabase_functions.http_request`, pg_net underneath) do not
sign what they send; they send the headers the trigger was created with. So the trigger sends
`Authorization: Bearer <DB_WEBHOOK_SECRET>` (or the service role key, which is what the
dashboard offers by default), and this caller compares it with each accepted value in
constant time (every candidate is compared, so the time does not say which one matched).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from shared.auth import SERVICE, Claims
from shared.errors import Unauthenticated, Unavailable

if TYPE_CHECKING:
    from shared.request import Request


class SharedSecret:
    """Admits `Authorization: Bearer <secret>`; the request then acts as service_role."""

    def __init__(
        self, *, scheme_name: str = "databaseWebhook", accept_service_role: bool = True
    ) -> None:
        self.scheme_name = scheme_name
        self.accept_service_role = accept_service_role

    def authenticate(self, request: Request) -> Claims:
        settings = request.settings
        accepted = [settings.db_webhook_secret]
        if self.accept_service_role:
            accepted.append(settings.service_role_key)
        candidates = [value.encode() for value in accepted if value]
        if not candidates:
            raise Unavailable("This route needs the setting DB_WEBHOOK_SECRET")
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("A bearer secret is required")
        presented = token.strip().encode("utf-8", "surrogateescape")
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(presented, candidate)
        if not matched:
            raise Unauthenticated("The bearer secret is not valid")
        return SERVICE

    def security_scheme(self) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A database webhook: `Authorization: Bearer <DB_WEBHOOK_SECRET>`"
                + (" or the service role key" if self.accept_service_role else "")
                + ", compared in constant time."
            ),
        }
