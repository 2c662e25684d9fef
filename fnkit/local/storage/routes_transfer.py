"""`POST /object/move` and `POST /object/copy`, as Storage's `moveObject` and `copyObject`.

Both check the caller's rights first (move: the caller must see the source and be allowed the
UPDATE that renames it; copy: the caller must see the source and be allowed to write the
destination), then copy the bytes to a new version file and record it as superuser, in one
transaction; the source's old file goes only after the commit (move), and a failed write
removes the new file.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from fnkit.local.storage.blobs import check_key
from fnkit.local.storage.context import Call, json_body, json_response, required_string
from fnkit.local.storage.errors import StorageError
from fnkit.local.storage.objects import (
    file_of,
    find_object,
    new_version,
    owner_columns,
    probe_write,
    write_row,
)
from fnkit.local.storage.uploads import user_metadata_header

__all__ = ["copy_object", "move_object"]


def _endpoints(call: Call) -> tuple[dict[str, Any], str, str, str, str]:
    body = json_body(call.request)
    bucket = required_string(body, "bucketId")
    source = required_string(body, "sourceKey")
    destination = required_string(body, "destinationKey")
    destination_bucket = body.get("destinationBucket") or bucket
    if not isinstance(destination_bucket, str):
        raise StorageError.validation("body/destinationBucket must be string")
    check_key(destination)
    return body, bucket, source, destination_bucket, destination


def move_object(call: Call) -> Response:
    _, bucket, source, to_bucket, destination = _endpoints(call)
    owner_uuid, owner_id = owner_columns(call.caller.sub)
    version = str(uuid.uuid4())
    rename = (
        "update storage.objects set name = %s, version = %s, bucket_id = %s, owner = %s::uuid,"
        " owner_id = %s{extra} where bucket_id = %s and name = %s"
    )
    blobs = call.ctx.blobs
    with (
        new_version(blobs, to_bucket, destination, version),
        call.ctx.db.transaction(call.caller) as tx,
    ):
        with tx.probe():
            find_object(tx, bucket, source, "id")
            moved = tx.run(
                rename.format(extra=""),
                (destination, version, to_bucket, owner_uuid, owner_id, bucket, source),
            )
            if not moved:
                raise StorageError.no_such_key()
        with tx.superuser():
            row = find_object(tx, bucket, source, "id::text as id, name, version, metadata")
            if (bucket, source) == (to_bucket, destination):
                return _moved(row["id"], destination)
            blobs.copy(file_of(blobs, bucket, row), to_bucket, destination, version)
            metadata = {**(row["metadata"] or {}), "lastModified": _iso_now()}
            tx.run(
                rename.format(extra=", metadata = %s::jsonb, updated_at = now()"),
                (
                    destination,
                    version,
                    to_bucket,
                    owner_uuid,
                    owner_id,
                    json.dumps(metadata),
                    bucket,
                    source,
                ),
            )
    blobs.remove(bucket, source, row["version"])
    return _moved(row["id"], destination)


def _moved(object_id: str, name: str) -> Response:
    return json_response({"message": "Successfully moved", "Id": object_id, "Key": name})


def copy_object(call: Call) -> Response:
    body, bucket, source, to_bucket, destination = _endpoints(call)
    headers = call.request.headers
    upsert = headers.get("x-upsert") == "true"
    copy_metadata = body.get("copyMetadata", True) is not False
    owner = call.caller.sub
    with call.ctx.db.transaction(call.caller) as tx:
        origin = find_object(tx, bucket, source, "name, metadata, user_metadata, version")
        metadata: dict[str, Any] = dict(origin["metadata"] or {})
        if not copy_metadata:
            given = body.get("metadata") or {}
            if isinstance(given, dict):
                for name in ("cacheControl", "mimetype"):
                    if given.get(name) is not None:
                        metadata[name] = given[name]
        user_metadata = (
            origin["user_metadata"]
            if copy_metadata
            else user_metadata_header(headers.get("x-metadata"))
        )
        probe_write(tx, to_bucket, destination, owner, metadata, user_metadata, upsert=upsert)
    blobs = call.ctx.blobs
    version = str(uuid.uuid4())
    with new_version(blobs, to_bucket, destination, version):
        blobs.copy(file_of(blobs, bucket, origin), to_bucket, destination, version)
        metadata["lastModified"] = _iso_now()
        with call.ctx.db.transaction(call.caller) as tx:
            row, previous = write_row(
                tx, to_bucket, destination, owner, metadata, user_metadata, version
            )
    if previous and previous != version:
        blobs.remove(to_bucket, destination, previous)
    return json_response({"Id": row["id"], "Key": f"{to_bucket}/{destination}", **row})


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
