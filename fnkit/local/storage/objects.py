"""Objects: rows in `storage.objects`, bytes in `Blobs`, kept in step as Storage keeps them.

Storage's order of work (src/storage/uploader.ts, object.ts), which this follows:

1. a permission probe as the caller (`testPermission`: the INSERT, or the upsert, that the
   upload will be, rolled back), so the policies on `storage.objects` say yes or no with the
   object's real name, owner and metadata;
2. the bytes, staged beforehand, renamed into place as a new version;
3. the row written "as superuser" in the same transaction (insert or upsert), the previous
   version's file removed only once that committed.

A failure anywhere before the commit removes the new file, so no file outlives a failed
metadata write; a crash between rename and commit leaves an unreferenced version file, never a
row without its bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fnkit.local.storage.blobs import Blobs, check_key
from fnkit.local.storage.database import Row, Tx
from fnkit.local.storage.errors import StorageError
from fnkit.local.storage.uploads import Upload

__all__ = [
    "OBJECT_COLUMNS",
    "file_of",
    "find_bucket",
    "find_object",
    "new_version",
    "owner_columns",
    "probe_write",
    "save_upload",
    "write_row",
]

OBJECT_COLUMNS = (
    "name, bucket_id, owner::text as owner, owner_id, version, id::text as id,"
    " updated_at, created_at, last_accessed_at, metadata, user_metadata"
)
_WRITE_COLUMNS = "bucket_id, name, owner, owner_id, metadata, user_metadata, version"
_WRITE_VALUES = "%s, %s, %s::uuid, %s, %s::jsonb, %s::jsonb, %s"


def _upsert_set(owner: str | None) -> str:
    """Storage's `upsertObject` updates only the fields it was given: no owner, owner kept."""
    columns = ["metadata", "user_metadata", "version"]
    if owner:
        columns += ["owner", "owner_id"]
    return ", ".join(f"{column} = excluded.{column}" for column in columns)


def owner_columns(sub: str | None) -> tuple[str | None, str | None]:
    """`owner` (a uuid column, set only when the sub is one) and `owner_id` (any sub)."""
    if not sub:
        return None, None
    try:
        return str(uuid.UUID(sub)), sub
    except ValueError:
        return None, sub


def find_bucket(tx: Tx, bucket_id: str, columns: str = "id") -> Row:
    """A bucket the transaction's current role can see; NoSuchBucket otherwise."""
    row = tx.one(f"select {columns} from storage.buckets where id = %s limit 1", (bucket_id,))
    if row is None:
        raise StorageError.no_such_bucket()
    return row


def find_object(tx: Tx, bucket_id: str, key: str, columns: str = OBJECT_COLUMNS) -> Row:
    """An object the current role can see (the select policies decide); NoSuchKey otherwise."""
    check_key(key)
    row = tx.one(
        f"select {columns} from storage.objects where bucket_id = %s and name = %s limit 1",
        (bucket_id, key),
    )
    if row is None:
        raise StorageError.no_such_key()
    return row


def probe_write(
    tx: Tx,
    bucket_id: str,
    key: str,
    owner: str | None,
    metadata: dict[str, Any] | None,
    user_metadata: dict[str, Any] | None,
    *,
    upsert: bool,
) -> None:
    """Storage's `canUpload`: the insert (or upsert) as the current role, undone afterwards."""
    owner_uuid, owner_id = owner_columns(owner)
    values = (
        bucket_id,
        key,
        owner_uuid,
        owner_id,
        json.dumps(metadata) if metadata is not None else None,
        json.dumps(user_metadata) if user_metadata is not None else None,
        "1",
    )
    query = f"insert into storage.objects ({_WRITE_COLUMNS}) values ({_WRITE_VALUES})"
    if upsert:
        query += f" on conflict (name, bucket_id) do update set {_upsert_set(owner)} returning id"
    try:
        with tx.probe():
            tx.run(query, values)
    except StorageError as exc:
        if exc.code == "ResourceAlreadyExists":  # Storage's createObject says it so
            raise StorageError.key_already_exists() from None
        raise


def storage_metadata(upload: Upload) -> dict[str, Any]:
    """The `metadata` column as Storage writes it from the backend's answer."""
    size = upload.staged.size
    return {
        "eTag": upload.staged.etag,
        "size": size,
        "mimetype": upload.mimetype,
        "cacheControl": upload.cache_control,
        "lastModified": _iso_now(),
        "contentLength": size,
        "httpStatusCode": 200,
    }


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_row(
    tx: Tx,
    bucket_id: str,
    key: str,
    owner: str | None,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    version: str,
) -> tuple[Row, str | None]:
    """Upsert the row as superuser; (the new row, the version it replaced if any).

    An advisory lock on the object's name (as Storage's `waitObjectLock`) serializes writers
    of one object, so each learns the version it really replaced and removes its file."""
    with tx.superuser():
        tx.one(
            "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%s, 0))",
            (f"{bucket_id}/{key}",),
        )
        previous = tx.one(
            "select version from storage.objects where bucket_id = %s and name = %s for update",
            (bucket_id, key),
        )
        owner_uuid, owner_id = owner_columns(owner)
        row = tx.one(
            f"insert into storage.objects ({_WRITE_COLUMNS}) values ({_WRITE_VALUES})"
            f" on conflict (name, bucket_id) do update set {_upsert_set(owner)}, updated_at = now()"
            f" returning {OBJECT_COLUMNS}",
            (
                bucket_id,
                key,
                owner_uuid,
                owner_id,
                json.dumps(metadata),
                json.dumps(user_metadata or {}),  # completeUpload writes `{...userMetadata}`
                version,
            ),
        )
    assert row is not None
    return row, (previous or {}).get("version")


@contextmanager
def new_version(blobs: Blobs, bucket_id: str, key: str, version: str) -> Iterator[None]:
    """Removes the new version's file when the block (the metadata write) fails."""
    try:
        yield
    except BaseException:
        blobs.remove(bucket_id, key, version)
        raise


def save_upload(
    tx: Tx,
    blobs: Blobs,
    bucket_id: str,
    key: str,
    upload: Upload,
    version: str,
    *,
    upsert: bool,
    owner: str | None,
) -> tuple[Row, str | None]:
    """Probe, place the bytes as `version`, write the row: (row, the version it replaced).

    Run it inside `new_version(...)` around the whole transaction, so that a failure up to
    and including the commit removes the new file.
    """
    probe_write(
        tx,
        bucket_id,
        key,
        owner,
        {"mimetype": upload.mimetype, "contentLength": upload.declared_length},
        upload.user_metadata,
        upsert=upsert,
    )
    metadata = storage_metadata(upload)
    blobs.commit(upload.staged, bucket_id, key, version)
    return write_row(tx, bucket_id, key, owner, metadata, upload.user_metadata, version)


def file_of(blobs: Blobs, bucket_id: str, row: Row) -> Path:
    """The file of a row's current version; NoSuchKey (as Storage's renderer says) if gone."""
    version = row.get("version")
    if not version:
        raise StorageError.no_such_key()
    path = blobs.path(bucket_id, row["name"], version)
    if not path.is_file():
        raise StorageError(404, "NoSuchKey", "The resource was not found", "Not found")
    return path
