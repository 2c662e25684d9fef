"""`/bucket`: create, list, get, update, empty, delete (src/http/routes/bucket/ in Storage).

Every statement runs as the caller, so the policies on `storage.buckets` decide (the service
role bypasses them; a user with no policy granting it gets Storage's RLS error). Limits are
checked as Storage checks them: names by its character set, `file_size_limit` as bytes or
`"20MB"`-style text never above the global limit, `allowed_mime_types` by its pattern.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.wrappers import Response

from fnkit.local.storage.blobs import check_bucket_name
from fnkit.local.storage.context import Call, json_body, json_response
from fnkit.local.storage.errors import StorageError
from fnkit.local.storage.objects import find_bucket, owner_columns

__all__ = [
    "create_bucket",
    "delete_bucket",
    "empty_bucket",
    "get_bucket",
    "list_buckets",
    "update_bucket",
]

_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)$", re.IGNORECASE)
_UNITS = {"GB": 1e9, "MB": 1e6, "KB": 1e3, "B": 1}
_MIME = re.compile(r"^([a-zA-Z0-9\-+.]+)/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?$|\*$")
_LIST_COLUMNS = (
    "id, name, public, coalesce(owner_id, owner::text, '') as owner, created_at, updated_at,"
    " file_size_limit, allowed_mime_types, type::text as type"
)
_GET_COLUMNS = (
    "id, name, coalesce(owner_id, owner::text, '') as owner, public, created_at, updated_at,"
    " file_size_limit, allowed_mime_types"
)
_SORTABLE = {"id", "name", "created_at", "updated_at"}


def _size_limit(call: Call, value: Any) -> int | None:
    """Storage's `parseMaxSizeLimit`: bytes or `"20MB"`; above the global limit is 413."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise StorageError.invalid_file_size_limit()
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise StorageError.invalid_file_size_limit()
        number = float(f"{float(match.group(1)):.3g}")
        value = number * _UNITS[match.group(2).upper()]
    limit = int(value)
    if limit > call.ctx.config.file_size_limit:
        raise StorageError.entity_too_large()
    return limit


def _mime_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StorageError.validation("body/allowed_mime_types must be array")
    types = [v for v in value if v]
    for entry in types:
        if len(entry) > 1000 or not _MIME.search(entry):  # JS `match`: unanchored
            raise StorageError.invalid_mime_type(entry)
    return types


def _public(body: dict[str, Any]) -> bool | None:
    value = body.get("public")
    if value is not None and not isinstance(value, bool):
        raise StorageError.validation("body/public must be boolean")
    return value


def create_bucket(call: Call) -> Response:
    body = json_body(call.request)
    name = body.get("name")
    if not isinstance(name, str):
        raise StorageError.validation("body must have required property 'name'")
    bucket_id = body.get("id") or name
    if name.strip() != name or not isinstance(bucket_id, str):
        raise StorageError.invalid_bucket_name()
    check_bucket_name(name)
    check_bucket_name(bucket_id)  # the id is the folder on disk: held to the same rules
    if body.get("type") not in (None, "STANDARD"):
        raise StorageError(
            409,
            "FeatureNotEnabled",
            "The feature iceberg_catalog is not enabled for this resource",
        )
    size_limit = _size_limit(call, body.get("file_size_limit"))
    mime_types = _mime_types(body.get("allowed_mime_types"))
    owner_uuid, owner_id = owner_columns(call.caller.sub)
    try:
        with call.ctx.db.transaction(call.caller) as tx:
            tx.run(
                "insert into storage.buckets (id, name, owner, owner_id, public,"
                " allowed_mime_types, file_size_limit, type)"
                " values (%s, %s, %s::uuid, %s, %s, %s, %s, 'STANDARD')",
                (
                    bucket_id,
                    name,
                    owner_uuid,
                    owner_id,
                    _public(body) or False,
                    mime_types,
                    size_limit,
                ),
            )
    except StorageError as exc:
        if exc.code == "ResourceAlreadyExists":
            raise StorageError.bucket_already_exists() from None
        raise
    return json_response({"name": name})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_buckets(call: Call) -> Response:
    args = call.request.args
    conditions: list[str] = []
    params: list[Any] = []
    if search := args.get("search"):
        conditions.append("name ilike %s")
        params.append(f"%{_escape_like(search)}%")
    query = f"select {_LIST_COLUMNS} from storage.buckets"
    if conditions:
        query += " where " + " and ".join(conditions)
    column = args.get("sortColumn")
    if column in _SORTABLE:
        order = "desc" if (args.get("sortOrder") or "").lower() == "desc" else "asc"
        query += f" order by {column} {order}"
    for clause, minimum in (("limit", 1), ("offset", 0)):
        value = args.get(clause)
        if value is not None:
            if not value.isdigit():
                raise StorageError.validation(f"querystring/{clause} must be integer")
            if int(value) < minimum:
                raise StorageError.validation(f"querystring/{clause} must be >= {minimum}")
            query += f" {clause} %s"
            params.append(int(value))
    with call.ctx.db.transaction(call.caller) as tx:
        return json_response(tx.all(query, params))


def get_bucket(call: Call, bucket_id: str) -> Response:
    with call.ctx.db.transaction(call.caller) as tx:
        return json_response(find_bucket(tx, bucket_id, _GET_COLUMNS))


def update_bucket(call: Call, bucket_id: str) -> Response:
    check_bucket_name(bucket_id)
    body = json_body(call.request, required=False)
    fields: dict[str, Any] = {}
    if "public" in body and body["public"] is not None:
        fields["public"] = _public(body)
    if "file_size_limit" in body:
        fields["file_size_limit"] = _size_limit(call, body["file_size_limit"])
    if "allowed_mime_types" in body:
        fields["allowed_mime_types"] = _mime_types(body["allowed_mime_types"])
    if not fields:
        raise StorageError.no_content()
    assignments = ", ".join(f"{column} = %s" for column in fields)
    with call.ctx.db.transaction(call.caller) as tx:
        updated = tx.run(
            f"update storage.buckets set {assignments}, updated_at = now() where id = %s",
            [*fields.values(), bucket_id],
        )
        if not updated:
            raise StorageError.no_such_bucket()
    return json_response({"message": "Successfully updated"})


def empty_bucket(call: Call, bucket_id: str) -> Response:
    """Storage queues this; here it is done before answering (rows, then files)."""
    with call.ctx.db.transaction(call.caller) as tx:
        find_bucket(tx, bucket_id, "name")
        removed = tx.all(
            "delete from storage.objects where bucket_id = %s returning name, version",
            (bucket_id,),
        )
    for row in removed:
        call.ctx.blobs.remove(bucket_id, row["name"], row["version"])
    return json_response(
        {"message": "Empty bucket has been queued. Completion may take up to an hour."}
    )


def delete_bucket(call: Call, bucket_id: str) -> Response:
    with call.ctx.db.transaction(call.caller) as tx:
        with tx.superuser():
            if not tx.one("select id from storage.buckets where id = %s for update", (bucket_id,)):
                raise StorageError.no_such_bucket()
            if tx.one("select 1 from storage.objects where bucket_id = %s limit 1", (bucket_id,)):
                raise StorageError.bucket_not_empty()
        if not tx.run("delete from storage.buckets where id = %s", (bucket_id,)):
            raise StorageError.no_such_bucket()
    return json_response({"message": "Successfully deleted"})
