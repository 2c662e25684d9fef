"""Machine callers: who besides a user's token may call a route.

A route's `auth=` is either a user level (`"public"`, `"user"`, `"user+aal2"`,
`"service_role"`) or a `Caller`: an object that proves a machine sent the request (a
Standard Webhooks signature from Supabase Auth, a shared secret from a database webhook, the
scheduler's identity) and says which claims the request then acts with in Postgres.

Why a protocol and not more level strings: each machine caller has its own settings (secrets,
audiences, service accounts), its own OpenAPI security scheme and its own way to verify, and
a function may declare its own. The pipeline only asks the three questions below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from shared.auth import Claims
    from shared.request import Request


@runtime_checkable
class Caller(Protocol):
    """A non-user caller a route admits."""

    #: The name of this caller's OpenAPI security scheme (`components.securitySchemes`).
    scheme_name: str

    def authenticate(self, request: Request) -> Claims:
        """The claims the request acts with, or raise `Unauthenticated` (401).

        Runs before the body is parsed: `request.raw_body` holds the exact bytes received,
        so a signature can be checked over them. Nothing of the request reaches the handler
        or the database when this raises.
        """
        ...

    def security_scheme(self) -> dict[str, Any]:
        """The OpenAPI security scheme object this caller is documented by."""
        ...
