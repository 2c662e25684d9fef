"""CORS: answer preflights before auth, echo only allow-listed origins.

`*` in ALLOWED_ORIGINS allows any origin, and then credentials are never allowed, so the
combination browsers refuse (and attackers love) cannot be produced.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

ALLOWED_HEADERS = (
    "authorization, content-type, idempotency-key, if-match, x-request-id, apikey, x-client-info"
)
EXPOSED_HEADERS = (
    "x-request-id, etag, ratelimit, ratelimit-policy, retry-after, idempotent-replayed"
)


class CorsPolicy(NamedTuple):
    """The allowed origins; immutable and hashable, so `_headers_for` can cache by it."""

    origins: tuple[str, ...]
    max_age: int = 600

    @property
    def any_origin(self) -> bool:
        return "*" in self.origins

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def headers_for(self, origin: str | None) -> Mapping[str, str]:
        """Headers for an actual (non-preflight) response: built once per origin, and
        read-only, so no caller can change another request's headers."""
        return _headers_for(self, origin)

    def _build(self, origin: str | None) -> dict[str, str]:
        headers = {"Vary": "Origin"}
        if origin and self.allows(origin):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            if not self.any_origin:
                headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def preflight_headers(self, origin: str | None, methods: list[str]) -> dict[str, str]:
        headers = dict(self.headers_for(origin))
        if "Access-Control-Allow-Origin" in headers:
            headers["Access-Control-Allow-Methods"] = ", ".join(methods)
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Max-Age"] = str(self.max_age)
        return headers


@functools.lru_cache(maxsize=256)
def _headers_for(policy: CorsPolicy, origin: str | None) -> Mapping[str, str]:
    """Per (policy, origin): a browser app sends the same few origins all day. Bounded, so a
    caller sending a new Origin each time only ever costs the build it saves the others."""
    return MappingProxyType(policy._build(origin))
