"""Read an upload's body as Storage reads it (`fileUploadFromRequest` in src/storage/uploader.ts).

Two shapes arrive. storage3 and supabase-js send `multipart/form-data` with the file part plus
`cacheControl` (seconds, stored as `max-age=<n>`) and `metadata` (JSON) fields, the part's own
content type (or a `contentType` field) being the object's. Anything else is the raw body,
with `Content-Type`, `Cache-Control` and `x-metadata` (base64 JSON) headers.

Limits are enforced while the bytes stream to disk, never after buffering them: the smaller of
the bucket's `file_size_limit` and the global limit (`LocalConfig.file_size_limit`), and the
bucket's `allowed_mime_types` (`image/*` wildcards), checked before the raw body is read (a
multipart body names its type in the file part, so it is checked once the part is in, and
the staged bytes are dropped when refused). An
`.emptyFolderPlaceholder` is held to zero bytes and any type, as Storage holds it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from io import BytesIO
from typing import IO, Any

from werkzeug.formparser import parse_form_data
from werkzeug.wrappers import Request

from fnkit.local.storage.blobs import Blobs, Staged
from fnkit.local.storage.errors import StorageError

__all__ = ["Upload", "read_upload", "user_metadata_header", "validate_mime_type"]

MAX_USER_METADATA = 1024 * 1024
PLACEHOLDER = ".emptyFolderPlaceholder"
# A media type as fastify's content-type parser accepts it (RFC 9110 tokens, then parameters).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}\s*(;.*)?$", re.DOTALL)


@dataclass
class Upload:
    """A body staged on disk with what Storage records about it."""

    staged: Staged
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None = field(default=None)
    declared_length: int | None = None


def validate_mime_type(mime_type: str, allowed: list[str]) -> None:
    """Storage's `validateMimeType`: `type/sub` must equal an entry or match `type/*`."""
    requested = mime_type.split("/")
    if len(requested) < 2:
        raise StorageError.invalid_mime_type(mime_type)
    kind, sub = requested[0], requested[1]
    for entry in allowed:
        entry_kind, _, entry_sub = entry.partition("/")
        if entry_kind == kind and entry_sub in ("*", sub):
            return
    raise StorageError.invalid_mime_type(mime_type)


def read_upload(
    request: Request, blobs: Blobs, key: str, size_limit: int, allowed: list[str] | None
) -> Upload:
    """Stage the request's file; refuses too large or disallowed bodies, leaving nothing."""
    placeholder = key.endswith(PLACEHOLDER)
    limit = 0 if placeholder else size_limit
    check_types = None if placeholder or not allowed else allowed
    declared = request.content_length
    staged = blobs.stage(limit)
    try:
        if (request.mimetype or "") == "multipart/form-data":
            upload = _multipart(request, staged, check_types)
        else:
            upload = _raw(request, staged, check_types)
        upload.declared_length = declared
        staged.close()
        return upload
    except BaseException:
        staged.discard()
        raise


def _raw(request: Request, staged: Staged, allowed: list[str] | None) -> Upload:
    mimetype = request.headers.get("Content-Type") or "application/octet-stream"
    if not _MEDIA_TYPE.match(mimetype):
        raise StorageError.invalid_content_type()
    if allowed is not None:
        validate_mime_type(mimetype, allowed)
    metadata = user_metadata_header(request.headers.get("x-metadata"))
    if request.content_length is not None and request.content_length > staged.limit:
        raise StorageError.entity_too_large()
    staged.fill(request.stream)
    cache_control = request.headers.get("Cache-Control") or "no-cache"
    return Upload(staged, mimetype, cache_control, metadata)


def _multipart(request: Request, staged: Staged, allowed: list[str] | None) -> Upload:
    parts: list[tuple[str, str]] = []

    def stream_factory(
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        """The first file part streams into the staged upload; further ones go nowhere."""
        if parts:
            return BytesIO()
        parts.append((filename or "", content_type or ""))
        return staged  # type: ignore[return-value]

    _, form, files = parse_form_data(
        request.environ, stream_factory=stream_factory, max_form_memory_size=2 * MAX_USER_METADATA
    )
    if not parts:
        raise StorageError.no_content()
    part_type = next(iter(files.values())).content_type if files else parts[0][1]
    mimetype = form.get("contentType") or part_type or "application/octet-stream"
    if allowed is not None:
        validate_mime_type(mimetype, allowed)
    cache_time = form.get("cacheControl")
    metadata_text = form.get("metadata") or form.get("userMetadata")
    user_metadata: dict[str, Any] | None = None
    if metadata_text is not None:
        if len(metadata_text.encode()) > MAX_USER_METADATA:
            raise StorageError.entity_too_large("user_metadata")
        user_metadata = _json_object(metadata_text)
    return Upload(
        staged,
        mimetype,
        f"max-age={cache_time}" if cache_time else "no-cache",
        user_metadata,
    )


def user_metadata_header(value: str | None) -> dict[str, Any] | None:
    """`x-metadata`: base64 of a JSON object; anything else is ignored, as Storage ignores it."""
    if not value:
        return None
    try:
        return _json_object(base64.b64decode(value).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
