"""Storage's errors, rendered as Supabase Storage renders them.

Storage (src/internal/errors/codes.ts, src/http/error-handler.ts) answers every error with
`{"statusCode": "<code as text>", "code": ..., "error": ..., "message": ...}` and, unless a route
says otherwise, the HTTP status 400 for any 4xx and 500 for a 500: the precise status is only
in the body's `statusCode`. Clients read the body (storage3 raises StorageApiError from
`message`, `error` and `statusCode`), so the body is what must match; `http_status` is kept for
the few routes where Storage sends the real status (a missing route, a role check).

Postgres errors map by SQLSTATE as Storage's `DBError.fromDBError` maps them. Anything else
is a 500 that says only "Internal Server Error": never a traceback or a driver message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from werkzeug.wrappers import Response

__all__ = ["StorageError", "from_database", "internal", "invalid_text"]


@dataclass
class StorageError(Exception):
    """One Storage error: its body fields and the HTTP status it is sent with."""

    status: int
    code: str
    message: str
    error: str | None = None
    http_status: int | None = None

    def response(self) -> Response:
        body = {
            "statusCode": str(self.status),
            "code": self.code,
            "error": self.error or self.code,
            "message": self.message,
        }
        status = self.http_status or (500 if self.status >= 500 else 400)
        return Response(json.dumps(body), status, content_type="application/json")

    # ---- the constructors Storage's ERRORS table names, with its words -----------------------

    @classmethod
    def no_such_bucket(cls) -> StorageError:
        return cls(404, "NoSuchBucket", "Bucket not found", "Bucket not found")

    @classmethod
    def no_such_key(cls) -> StorageError:
        return cls(404, "NoSuchKey", "Object not found", "not_found")

    @classmethod
    def access_denied(cls, message: str, http_status: int | None = None) -> StorageError:
        return cls(403, "AccessDenied", message or "Access denied", "Unauthorized", http_status)

    @classmethod
    def invalid_jwt(cls, message: str) -> StorageError:
        return cls(400, "InvalidJWT", message or "Invalid JWT")

    @classmethod
    def invalid_signature(cls, message: str = "Invalid signature") -> StorageError:
        return cls(400, "InvalidSignature", message)

    @classmethod
    def expired_signature(cls) -> StorageError:
        return cls(400, "ExpiredToken", "The provided token has expired.")

    @classmethod
    def invalid_key(cls, key: str) -> StorageError:
        return cls(400, "InvalidKey", f"Invalid key: {key}")

    @classmethod
    def invalid_bucket_name(cls) -> StorageError:
        return cls(400, "InvalidBucketName", "Bucket name invalid", "Invalid Input")

    @classmethod
    def key_already_exists(cls) -> StorageError:
        return cls(409, "KeyAlreadyExists", "The resource already exists", "Duplicate")

    @classmethod
    def bucket_already_exists(cls) -> StorageError:
        return cls(409, "BucketAlreadyExists", "The resource already exists", "Duplicate")

    @classmethod
    def resource_already_exists(cls) -> StorageError:
        return cls(409, "ResourceAlreadyExists", "The resource already exists", "Duplicate")

    @classmethod
    def bucket_not_empty(cls) -> StorageError:
        return cls(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")

    @classmethod
    def entity_too_large(cls, entity: str = "object") -> StorageError:
        return cls(
            413,
            "EntityTooLarge",
            f"The {entity} exceeded the maximum allowed size",
            "Payload too large",
        )

    @classmethod
    def invalid_mime_type(cls, mime_type: str) -> StorageError:
        return cls(
            415, "InvalidMimeType", f"mime type {mime_type} is not supported", "invalid_mime_type"
        )

    @classmethod
    def invalid_content_type(cls) -> StorageError:
        """fastify's answer to a Content-Type header that is no media type at all."""
        return cls(415, "InvalidMimeType", "Invalid Content-Type header", "invalid_mime_type")

    @classmethod
    def no_content(cls, message: str = "No content provided") -> StorageError:
        return cls(400, "InvalidRequest", message)

    @classmethod
    def invalid_file_size_limit(cls) -> StorageError:
        return cls(
            400,
            "InvalidRequest",
            "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B",
        )

    @classmethod
    def validation(cls, message: str) -> StorageError:
        """A request that fails the route's schema, as fastify's validator words it."""
        return cls(400, "InvalidRequest", message, "Bad Request", 400)

    @classmethod
    def route_not_found(cls, method: str, url: str) -> StorageError:
        return cls(404, "InvalidRequest", f"Route {method}:{url} not found", "Not Found", 404)


def internal() -> StorageError:
    return StorageError(500, "InternalError", "Internal Server Error", "Internal")


def invalid_text() -> StorageError:
    """Text Postgres cannot hold (NUL, a lone surrogate): the caller's fault, never a 500."""
    return StorageError(400, "InvalidParameter", "Invalid value format or type conversion")


def from_database(exc: psycopg.Error) -> StorageError:
    """Storage's `DBError.fromDBError`: the SQLSTATE decides, the driver's text stays here.

    Beyond Storage's table, any data exception (class 22: a NUL the driver refuses before
    sending, an untranslatable character, a malformed timestamp in a forged cursor) is the
    caller's input, so a 400, where Storage would answer 500."""
    state = exc.sqlstate or ""
    if isinstance(exc, psycopg.DataError) and (not state or state.startswith("22")):
        return invalid_text()
    if state == "42501":
        text = exc.diag.message_primary or ""
        message = (
            "new row violates row-level security policy" if "row-level security" in text else text
        )
        return StorageError.access_denied(message)
    if state == "23505":
        return StorageError.resource_already_exists()
    if state == "23503":
        return StorageError(404, "InvalidRequest", "The related resource does not exist")
    if state == "55P03":
        return StorageError(423, "ResourceLocked", "The resource is locked")
    if state == "57014":
        return StorageError(
            544, "DatabaseTimeout", "The connection to the database timed out", http_status=544
        )
    if state == "22P02":
        return StorageError(400, "InvalidParameter", "Invalid value format or type conversion")
    return StorageError(500, "DatabaseError", f"database error, code: {state or 'unknown'}")
