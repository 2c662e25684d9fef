"""Optimistic concurrency over HTTP: versions as ETags, `If-Match` to say which one you read."""

from __future__ import annotations

import re

from shared.errors import ValidationFailed, detail
from shared.request import Request

_IF_MATCH = re.compile(r'(?:W/)?(?:"(\d{1,10})"|(\d{1,10}))')


def if_match_version(request: Request) -> int | None:
    """The version in `If-Match`: `"3"`, `W/"3"` or `3`; None when the header is absent."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    found = _IF_MATCH.fullmatch(raw.strip())
    number = int(found.group(1) or found.group(2)) if found else 0
    if not 1 <= number < 2**31:
        message = 'If-Match must be one version, e.g. "3"'
        raise ValidationFailed(message, details=[detail(["header", "If-Match"], "format", message)])
    return number


def etag(version: int) -> dict[str, str]:
    """The header that tells a client which version it now holds."""
    return {"ETag": f'"{version}"'}
