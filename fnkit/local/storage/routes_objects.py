"""`/object/...`: upload, download, info, remove (src/http/routes/object/ in Storage).

Each handler takes the request as a `Call` and answers a werkzeug Response; errors are raised
as `StorageError` and rendered by the app. Reads of a public bucket's objects skip the
policies, as Storage's do; everything else reads and writes as the caller.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from werkzeug.wrappers import Response

from fnkit.local.storage.blobs import check_key
from fnkit.local.storage.context import Call, json_body, json_response
from fnkit.local.storage.errors import StorageError
from fnkit.local.storage.objects import (
    OBJECT_COLUMNS,
    file_of,
    find_bucket,
    find_object,
    new_version,
    save_upload,
)
from fnkit.local.storage.render import asset, info
from fnkit.local.storage.uploads import read_upload

__all__ = [
    "create_object",
    "delete_object",
    "delete_objects",
    "get_object",
    "get_object_info",
    "get_public_object",
    "update_object",
    "upload_object",
]

MAX_OBJECTS_PER_REQUEST = 1000


def upload_object(
    call: Call,
    bucket: str,
    key: str,
    *,
    upsert: bool,
    owner: str | None,
    privileged: bool = False,
) -> dict[str, Any]:
    """Stage the body within the bucket's limits, then probe, place and record it.

    `privileged` (a signed upload URL) runs the whole write past the policies, as Storage's
    `asSuperUser()` does: the signer's rights were checked when the URL was signed."""
    check_key(key)
    ctx = call.ctx
    with ctx.db.transaction(call.caller) as tx, tx.superuser():
        limits = find_bucket(tx, bucket, "id, file_size_limit, allowed_mime_types")
    upload = read_upload(
        call.request,
        ctx.blobs,
        key,
        ctx.size_limit(limits["file_size_limit"]),
        limits["allowed_mime_types"],
    )
    version = str(uuid.uuid4())
    try:
        with (
            new_version(ctx.blobs, bucket, key, version),
            ctx.db.transaction(call.caller) as tx,
            tx.superuser() if privileged else contextlib.nullcontext(),
        ):
            row, previous = save_upload(
                tx, ctx.blobs, bucket, key, upload, version, upsert=upsert, owner=owner
            )
    finally:
        upload.staged.discard()
    if previous and previous != version:
        ctx.blobs.remove(bucket, key, previous)
    return {"Id": row["id"], "Key": f"{bucket}/{key}"}


def create_object(call: Call, bucket: str, key: str) -> Response:
    """`POST /object/{bucket}/{key}`: a new object, or a replacement with `x-upsert: true`."""
    upsert = call.request.headers.get("x-upsert") == "true"
    return json_response(upload_object(call, bucket, key, upsert=upsert, owner=call.caller.sub))


def update_object(call: Call, bucket: str, key: str) -> Response:
    """`PUT /object/{bucket}/{key}`: always an upsert."""
    return json_response(upload_object(call, bucket, key, upsert=True, owner=call.caller.sub))


def _readable(call: Call, bucket: str, key: str, *, public_route: bool) -> dict[str, Any]:
    """The row a reader may get: public buckets without policies, others through them."""
    with call.ctx.db.transaction(call.caller) as tx:
        with tx.superuser():
            found = tx.one("select id, public from storage.buckets where id = %s", (bucket,))
        authenticated = call.caller.authenticated and not public_route
        if found is None or (not authenticated and not found["public"]):
            raise StorageError.no_such_bucket()
        if found["public"] or public_route:
            with tx.superuser():
                return find_object(tx, bucket, key)
        return find_object(tx, bucket, key)


def get_object(call: Call, bucket: str, key: str) -> Response:
    """`GET|HEAD /object/[authenticated/]{bucket}/{key}`."""
    row = _readable(call, bucket, key, public_route=False)
    return asset(call.request, row, file_of(call.ctx.blobs, bucket, row))


def get_public_object(call: Call, bucket: str, key: str) -> Response:
    """`GET|HEAD /object/public/{bucket}/{key}`: public buckets only, no credentials needed."""
    row = _readable(call, bucket, key, public_route=True)
    return asset(call.request, row, file_of(call.ctx.blobs, bucket, row))


def get_object_info(call: Call, bucket: str, key: str, *, public: bool = False) -> Response:
    """`GET /object/info/[public/|authenticated/]{bucket}/{key}`."""
    row = _readable(call, bucket, key, public_route=public)
    file_of(call.ctx.blobs, bucket, row)
    return info(row)


def delete_object(call: Call, bucket: str, key: str) -> Response:
    """`DELETE /object/{bucket}/{key}`: through the delete policies; the file after commit."""
    with call.ctx.db.transaction(call.caller) as tx:
        with tx.superuser():
            row = find_object(tx, bucket, key, "name, version")
        deleted = tx.run(
            "delete from storage.objects where bucket_id = %s and name = %s", (bucket, key)
        )
        if not deleted:
            raise StorageError.access_denied("Access denied")
    call.ctx.blobs.remove(bucket, key, row["version"])
    return json_response({"message": "Successfully deleted"})


def delete_objects(call: Call, bucket: str) -> Response:
    """`DELETE /object/{bucket}` with `{"prefixes": [...]}`: the rows the caller may delete."""
    body = json_body(call.request)
    prefixes = body.get("prefixes")
    if prefixes is None:
        raise StorageError.validation("body must have required property 'prefixes'")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise StorageError.validation("body/prefixes must be array")
    if not prefixes:
        raise StorageError.validation("body/prefixes must NOT have fewer than 1 items")
    if len(prefixes) > MAX_OBJECTS_PER_REQUEST:
        raise StorageError.validation(
            f"body/prefixes must NOT have more than {MAX_OBJECTS_PER_REQUEST} items"
        )
    with call.ctx.db.transaction(call.caller) as tx:
        rows = tx.all(
            f"delete from storage.objects where bucket_id = %s and name = any(%s)"
            f" returning {OBJECT_COLUMNS}",
            (bucket, prefixes),
        )
    for row in rows:
        call.ctx.blobs.remove(bucket, row["name"], row["version"])
    return json_response(rows)
