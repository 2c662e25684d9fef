"""Optimistic concurrency over HTTP: versions as ETags, `If-Match` to say which one you read.

RFC 9110 §13.1.1: a request whose `If-Match` names a version that is no longer current fails
with 412 Precondition Failed (`PreconditionFailed`); a stale `version` in a body is not a
precondition but a conflict in the data, 409 (`VersionConflict`), as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import ValidationFailed, detail
from shared.request import Request

# Compiled at first use (re keeps it cached), not at import: few requests carry If-Match,
# and a cold start's first one hardly ever does.
_IF_MATCH = r'(?:W/)?(?:"(\d{1,10})"|(\d{1,10}))'
_MARK = "__reads_if_match__"
F = TypeVar("F", bound=Callable[..., Any])


def conditional(endpoint: F) -> F:
    """Mark a handler that reads `If-Match`, so its OpenAPI operation declares the header and
    its 412 (`shared.openapi`); the handler still calls `if_match_version` itself."""
    setattr(endpoint, _MARK, True)  # a plain attribute assignment fails mypy --strict
    return endpoint


def reads_if_match(endpoint: Callable[..., Any]) -> bool:
    return bool(getattr(endpoint, _MARK, False))


def if_match_version(request: Request) -> int | None:
    """The version in `If-Match`: `"3"`, `W/"3"` or `3`; None when the header is absent."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    found = re.fullmatch(_IF_MATCH, raw.strip())
    number = int(found.group(1) or found.group(2)) if found else 0
    if not 1 <= number < 2**31:
        message = 'If-Match must be one version, e.g. "3"'
        raise ValidationFailed(message, details=[detail(["header", "If-Match"], "format", message)])
    return number


def etag(version: int) -> dict[str, str]:
    """The header that tells a client which version it now holds."""
    return {"ETag": f'"{version}"'}
