"""Signed URLs: made by a caller who may read (or write) an object, used with no credentials.

- `POST /object/sign/{bucket}/{key}` (`expiresIn`) → `{"signedURL": "/object/sign/...?token="}`,
  after checking, through the policies, that the caller sees the object.
- `POST /object/sign/{bucket}` (`paths`, `expiresIn`) → one entry per path, with an error for
  the ones the caller cannot see.
- `GET /object/sign/{bucket}/{key}?token=` → the bytes, `Expires` set to the token's expiry.
- `POST /object/upload/sign/{bucket}/{key}` → `{"url", "token"}`, after the same permission
  probe an upload makes; `PUT` to that URL uploads as the signer (owner, upsert from the token),
  past the policies (they were checked when signing), within the bucket's limits.
"""

from __future__ import annotations

from datetime import UTC, datetime

from werkzeug.wrappers import Response

from fnkit.local.storage.blobs import check_key
from fnkit.local.storage.context import Call, json_body, json_response
from fnkit.local.storage.errors import StorageError
from fnkit.local.storage.objects import file_of, find_object, probe_write
from fnkit.local.storage.render import asset
from fnkit.local.storage.routes_objects import MAX_OBJECTS_PER_REQUEST, upload_object
from fnkit.local.storage.signing import (
    DOWNLOAD,
    UPLOAD,
    UPLOAD_URL_EXPIRY_S,
    parse_expires_in,
    sign,
    verify_signed,
)
from fnkit.local.storage.uploads import user_metadata_header

__all__ = [
    "get_signed_object",
    "sign_object",
    "sign_objects",
    "sign_upload",
    "upload_signed_object",
]


def sign_object(call: Call, bucket: str, key: str) -> Response:
    body = json_body(call.request)
    if "expiresIn" not in body:
        raise StorageError.validation("body must have required property 'expiresIn'")
    expires_in = parse_expires_in(body["expiresIn"])
    with call.ctx.db.transaction(call.caller) as tx:
        find_object(tx, bucket, key, "id")
    url = f"{bucket}/{key}"
    token = sign(call.ctx.config, {"url": url, "scope": DOWNLOAD}, expires_in)
    return json_response({"signedURL": f"/object/sign/{url}?token={token}"})


def sign_objects(call: Call, bucket: str) -> Response:
    body = json_body(call.request)
    for name in ("expiresIn", "paths"):
        if name not in body:
            raise StorageError.validation(f"body must have required property '{name}'")
    expires_in = parse_expires_in(body["expiresIn"])
    paths = body["paths"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise StorageError.validation("body/paths must be array")
    if not paths or len(paths) > MAX_OBJECTS_PER_REQUEST:
        raise StorageError.validation("body/paths must have between 1 and 1000 items")
    with call.ctx.db.transaction(call.caller) as tx:
        rows = tx.all(
            "select name from storage.objects where bucket_id = %s and name = any(%s)",
            (bucket, paths),
        )
    visible = {row["name"] for row in rows}
    signed = []
    for path in paths:
        if path in visible:
            url = f"{bucket}/{path}"
            token = sign(call.ctx.config, {"url": url, "scope": DOWNLOAD}, expires_in)
            signed.append(
                {"error": None, "path": path, "signedURL": f"/object/sign/{url}?token={token}"}
            )
        else:
            signed.append(
                {
                    "error": "Either the object does not exist or you do not have access to it",
                    "path": path,
                    "signedURL": None,
                }
            )
    return json_response(signed)


def _token(call: Call) -> str:
    token = call.request.args.get("token")
    if not token:
        raise StorageError.validation("querystring must have required property 'token'")
    return token


def get_signed_object(call: Call, bucket: str, key: str) -> Response:
    claims = verify_signed(call.ctx.config, _token(call), bucket, key, DOWNLOAD)
    with call.ctx.db.transaction(call.caller) as tx, tx.superuser():
        row = find_object(tx, bucket, key)
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    path = file_of(call.ctx.blobs, bucket, row)
    return asset(call.request, row, path, expires=expires)


def sign_upload(call: Call, bucket: str, key: str) -> Response:
    check_key(key)
    headers = call.request.headers
    upsert = headers.get("x-upsert") == "true"
    length = headers.get("Content-Length")
    metadata = {
        "mimetype": headers.get("Content-Type"),
        "contentLength": int(length) if length and length.isdigit() else None,
    }
    user_metadata = user_metadata_header(headers.get("x-metadata"))
    owner = call.caller.sub
    with call.ctx.db.transaction(call.caller) as tx:
        probe_write(tx, bucket, key, owner, metadata, user_metadata, upsert=upsert)
    url = f"{bucket}/{key}"
    claims = {"owner": owner, "url": url, "upsert": upsert, "scope": UPLOAD}
    if owner is None:
        del claims["owner"]
    token = sign(call.ctx.config, claims, UPLOAD_URL_EXPIRY_S)
    return json_response({"url": f"/object/upload/sign/{url}?token={token}", "token": token})


def upload_signed_object(call: Call, bucket: str, key: str) -> Response:
    claims = verify_signed(call.ctx.config, _token(call), bucket, key, UPLOAD)
    owner = claims.get("owner")
    result = upload_object(
        call,
        bucket,
        key,
        upsert=bool(claims.get("upsert")),
        owner=owner if isinstance(owner, str) else None,
        privileged=True,
    )
    return json_response({"Key": result["Key"]})
