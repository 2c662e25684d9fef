"""What each operation's route declaration promises its caller, read from the OpenAPI
document the declaration makes, so the hostile suite and the fuzz treat a new machine route
correctly without a hand list of paths.

* `answer`: `x-answer`, the route's `answer=`: "envelope", "raw" or "auth_hook" (a success is
  the hook's own document; an error is the envelope whose error carries `http_code`).
* `credentials`: what a machine caller must present for a body to reach validation:
  "standard-webhooks" (its security scheme says `x-standard-webhooks`), "bearer-secret" (an
  http bearer scheme other than the users' JWT) or None (a user's token).
* `closed_body`: the body model refuses unknown fields (`additionalProperties: false`); hook
  models accept them on purpose (Supabase adds fields to its payloads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fnkit.devenv import DEV_DB_WEBHOOK_SECRET
from tests.webhook_signing import signed


@dataclass(frozen=True)
class Contract:
    answer: str = "envelope"
    credentials: str | None = None
    closed_body: bool = True

    @property
    def machine(self) -> bool:
        return self.credentials is not None

    def credential_headers(self, body: bytes) -> dict[str, str]:
        """The headers Supabase would send with these exact bytes (none for a user route)."""
        if self.credentials == "bearer-secret":
            return {"Authorization": f"Bearer {DEV_DB_WEBHOOK_SECRET}"}
        if self.credentials == "standard-webhooks":
            _, headers = signed(body)
            return {k: v for k, v in headers.items() if k.startswith("webhook-")}
        return {}


def body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    ref = schema.get("$ref")
    if ref:
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def contract_of(document: dict[str, Any], operation: dict[str, Any]) -> Contract:
    credentials = None
    schemes = document.get("components", {}).get("securitySchemes", {})
    for requirement in operation.get("security", []):
        for name in requirement:
            scheme = schemes.get(name, {})
            if "x-standard-webhooks" in scheme:
                credentials = "standard-webhooks"
            elif scheme.get("scheme") == "bearer" and scheme.get("bearerFormat") != "JWT":
                credentials = "bearer-secret"
    closed = True
    if "requestBody" in operation:
        closed = body_schema(document, operation).get("additionalProperties") is False
    return Contract(operation.get("x-answer", "envelope"), credentials, closed)
