"""Answer with an object: its bytes (GET), its headers only (HEAD) or its info (JSON).

The headers are Storage's renderer's (src/storage/renderer/renderer.ts): Content-Type, ETag,
Content-Length, Last-Modified, Accept-Ranges, X-Robots-Tag, Cache-Control (or Expires for a
signed URL), Content-Disposition with `?download`, 304 for a matching If-None-Match, and a
single `bytes=a-b` Range as 206.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from fnkit.local.storage.context import json_response
from fnkit.local.storage.errors import StorageError

__all__ = ["asset", "info"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _last_modified(metadata: dict[str, Any], path: Path) -> datetime:
    text = metadata.get("lastModified")
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def asset(
    request: Request,
    row: dict[str, Any],
    path: Path,
    *,
    expires: datetime | None = None,
) -> Response:
    """The object's bytes with Storage's headers (or only the headers, for HEAD)."""
    head = request.method == "HEAD"
    metadata: dict[str, Any] = row.get("metadata") or {}
    size = path.stat().st_size
    etag = metadata.get("eTag")
    headers: dict[str, str] = {
        "Accept-Ranges": "bytes",
        "Content-Type": str(metadata.get("mimetype") or "application/octet-stream"),
        "X-Robots-Tag": "none",
        "Last-Modified": format_datetime(_last_modified(metadata, path), usegmt=True),
    }
    if etag:
        headers["ETag"] = str(etag)
    if expires is not None:
        headers["Expires"] = format_datetime(expires, usegmt=True)
    elif metadata.get("cacheControl"):
        headers["Cache-Control"] = str(metadata["cacheControl"])
    download = request.args.get("download")
    if download is not None:
        name = quote(download, safe="")
        headers["Content-Disposition"] = (
            f"attachment; filename={name}; filename*=UTF-8''{name}" if name else "attachment;"
        )
    if etag and request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers=headers)
    if _not_modified_since(request, metadata, path):
        return Response(status=304, headers=headers)
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("Range")
    if wanted and size > 0 and (match := _RANGE.fullmatch(wanted.strip())):
        start, end = _bounds(match.group(1), match.group(2), size)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(end - start + 1, 0)
    headers["Content-Length"] = str(length)
    if head:
        return Response(status=status, headers=headers)
    stream = path.open("rb")
    stream.seek(start)
    body = wrap_file(request.environ, _Limited(stream, length))  # type: ignore[arg-type]
    return Response(body, status=status, headers=headers, direct_passthrough=True)


def info(row: dict[str, Any]) -> Response:
    """`GET /object/info/...`: Storage's InfoRenderer body."""
    metadata: dict[str, Any] = row.get("metadata") or {}
    response = json_response(
        {
            "id": row.get("id"),
            "name": row.get("name"),
            "version": row.get("version"),
            "bucket_id": row.get("bucket_id"),
            "size": metadata.get("size"),
            "content_type": metadata.get("mimetype"),
            "cache_control": metadata.get("cacheControl"),
            "etag": metadata.get("eTag"),
            "metadata": row.get("user_metadata"),
            "last_modified": row.get("updated_at"),
            "created_at": row.get("created_at"),
        }
    )
    if metadata.get("eTag"):
        response.headers["ETag"] = str(metadata["eTag"])
    if metadata.get("cacheControl"):
        response.headers["Cache-Control"] = str(metadata["cacheControl"])
    return response


def _bounds(first: str, last: str, size: int) -> tuple[int, int]:
    if not first and not last:
        raise StorageError(400, "InvalidRange", "invalid range provided", "invalid_range")
    if not first:  # the last N bytes
        return max(size - int(last), 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start > end:
        raise StorageError(400, "InvalidRange", "invalid range provided", "invalid_range")
    return start, end


def _not_modified_since(request: Request, metadata: dict[str, Any], path: Path) -> bool:
    since = request.headers.get("If-Modified-Since")
    if not since:
        return False
    try:
        limit = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return _last_modified(metadata, path).replace(microsecond=0) <= limit


class _Limited:
    """A file read for at most `length` bytes (a Range), closed with the response."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        chunk: bytes = self._stream.read(size)
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._stream.close()
