"""The local Storage authorizes as Supabase Storage does: through the project's policies on
`storage.objects` (supabase/migrations/*_rls.sql and *_hardening.sql), with signed URLs, within
the bucket's and the global limits, and never writes outside its data dir.

The `attachments` bucket's policies: members (not viewers) of the workspace named by the
object's first folder may upload, and only where a `public.attachments` row names the object;
members read; outsiders see nothing.
"""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import psycopg
import pytest
from storage3.exceptions import StorageApiError

from fnkit.devenv import DEV_JWT_SECRET, DEV_SERVICE_ROLE_KEY
from tests.fixtures.server import SEED_USERS, Served
from tests.test_local_storage import (
    data_root,
    error_of,
    files_under,
    make_bucket,
    raw,
    storage_as,
    storage_url,
)

__all__ = ["make_bucket"]  # the fixture, imported for this module's tests

BUCKET = "attachments"


def attachment_path(db: psycopg.Connection[Any], task: str, uploaded_by: str) -> str:
    """A `public.attachments` row, as `POST /attachments` leaves it; its storage path."""
    row = db.execute(
        "insert into public.attachments (task_id, filename, content_type, size_bytes, uploaded_by)"
        " values (%s, 'a.txt', 'text/plain', 5, %s) returning storage_path",
        (task, uploaded_by),
    ).fetchone()
    assert row is not None
    return str(row[0])


def object_row(db: psycopg.Connection[Any], name: str) -> tuple[Any, ...] | None:
    return db.execute(
        "select owner::text, owner_id, metadata->>'size' from storage.objects"
        " where bucket_id = %s and name = %s",
        (BUCKET, name),
    ).fetchone()


# ---- the attachments bucket's policies --------------------------------------------------------


def test_a_member_uploads_only_where_an_attachment_row_names_the_object(
    served: Served, db_admin: Any, team: str, task: str
) -> None:
    member = storage_as(served, "member").from_(BUCKET)
    path = attachment_path(db_admin, task, SEED_USERS["member"])
    member.upload(path, b"hello", {"content-type": "text/plain"})
    assert member.download(path) == b"hello"
    assert object_row(db_admin, path) == (SEED_USERS["member"], SEED_USERS["member"], "5")
    # A replacement by the service role (no `sub`) keeps the owner, as Storage's upsert does.
    storage_as(served, "service").from_(BUCKET).update(path, b"replaced")
    assert object_row(db_admin, path) == (SEED_USERS["member"], SEED_USERS["member"], "8")
    stray = f"{team}/{task}/{uuid.uuid4()}"
    with pytest.raises(StorageApiError) as refused:
        member.upload(stray, b"no row for me")
    assert error_of(refused) == (
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
    )
    assert object_row(db_admin, stray) is None
    assert not any(stray in str(p) for p in files_under(data_root(served)))


def test_a_viewer_may_read_but_not_upload_and_an_outsider_sees_nothing(
    served: Served, db_admin: Any, task: str
) -> None:
    path = attachment_path(db_admin, task, SEED_USERS["member"])
    storage_as(served, "member").from_(BUCKET).upload(path, b"team only")
    viewer = storage_as(served, "viewer").from_(BUCKET)
    assert viewer.download(path) == b"team only"
    other = attachment_path(db_admin, task, SEED_USERS["viewer"])
    with pytest.raises(StorageApiError) as refused:
        viewer.upload(other, b"viewers may not")
    assert error_of(refused)[0] == "403"
    outsider = storage_as(served, "outsider").from_(BUCKET)
    with pytest.raises(StorageApiError) as hidden:
        outsider.download(path)
    assert error_of(hidden) == ("404", "not_found", "Object not found")
    assert outsider.list(path.rsplit("/", 1)[0]) == []
    with pytest.raises(StorageApiError):
        outsider.create_signed_url(path, 60)
    with raw(served, "outsider") as client:  # nor delete it
        assert client.request("DELETE", f"/object/{BUCKET}", json={"prefixes": [path]}).json() == []
    assert object_row(db_admin, path) is not None


# ---- signed URLs ------------------------------------------------------------------------------


def test_signed_upload_and_download_urls_need_no_other_credentials(
    served: Served, db_admin: Any, task: str
) -> None:
    path = attachment_path(db_admin, task, SEED_USERS["member"])
    member = storage_as(served, "member").from_(BUCKET)
    upload = member.create_signed_upload_url(path)
    assert upload["signed_url"].startswith(f"{storage_url(served.auth)}/object/upload/sign/")
    claims = jwt.decode(upload["token"], DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["url"] == f"{BUCKET}/{path}" and claims["scope"] == "upload"
    put = httpx.put(upload["signed_url"], content=b"via signed url", timeout=10)
    assert put.status_code == 200 and put.json() == {"Key": f"{BUCKET}/{path}"}
    assert object_row(db_admin, path)[:2] == (SEED_USERS["member"], SEED_USERS["member"])
    signed = member.create_signed_url(path, 60)["signedURL"]
    got = httpx.get(signed, timeout=10)
    assert got.content == b"via signed url" and "Expires" in got.headers
    download_token = urlsplit(signed).query.removeprefix("token=")
    # A download token cannot upload, nor read another object; a bad signature is refused.
    with raw(served) as client:
        replay = client.put(f"/object/upload/sign/{BUCKET}/{path}?token={download_token}")
        elsewhere = client.get(f"/object/sign/{BUCKET}/{path}x?token={download_token}")
        forged = client.get(f"/object/sign/{BUCKET}/{path}?token={download_token[:-2]}xx")
    assert replay.json()["message"] == "Token is not scoped for upload"
    assert elsewhere.json()["code"] == "InvalidSignature"
    assert forged.json()["code"] == "InvalidJWT"


def test_signing_goes_through_the_policies(served: Served, db_admin: Any, task: str) -> None:
    path = attachment_path(db_admin, task, SEED_USERS["member"])
    with pytest.raises(StorageApiError) as viewer:
        storage_as(served, "viewer").from_(BUCKET).create_signed_upload_url(path)
    assert error_of(viewer)[0] == "403"
    with pytest.raises(StorageApiError) as missing:
        storage_as(served, "member").from_(BUCKET).create_signed_url(path, 60)
    assert error_of(missing) == ("404", "not_found", "Object not found")


def test_an_expired_signed_url_is_refused(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    storage_as(served, "service").from_(bucket).upload("a.txt", b"a")
    token = jwt.encode(
        {"url": f"{bucket}/a.txt", "scope": "download", "iat": 1, "exp": 2},
        DEV_JWT_SECRET,
        algorithm="HS256",
    )
    with raw(served) as client:
        response = client.get(f"/object/sign/{bucket}/a.txt", params={"token": token})
    assert response.status_code == 400 and response.json()["code"] == "InvalidJWT"


# ---- limits -----------------------------------------------------------------------------------


def test_bucket_size_and_mime_limits(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket(file_size_limit=10, allowed_mime_types=["image/*", "application/pdf"])
    files = storage_as(served, "service").from_(bucket)
    files.upload("ok.png", b"0123456789", {"content-type": "image/png"})
    files.upload("ok.pdf", b"%PDF", {"content-type": "application/pdf"})
    with pytest.raises(StorageApiError) as big:
        files.upload("big.png", b"01234567890", {"content-type": "image/png"})
    assert error_of(big) == (
        "413",
        "Payload too large",
        "The object exceeded the maximum allowed size",
    )
    with pytest.raises(StorageApiError) as html:
        files.upload("page.html", b"<p>", {"content-type": "text/html"})
    assert error_of(html) == ("415", "invalid_mime_type", "mime type text/html is not supported")
    with raw(served, "service") as client:  # a raw body past the limit, refused up front
        raw_big = client.post(
            f"/object/{bucket}/raw.png", content=b"x" * 11, headers={"Content-Type": "image/png"}
        )
    assert raw_big.json()["statusCode"] == "413"
    assert {p.parent.name for p in files_under(data_root(served) / bucket)} == {"ok.png", "ok.pdf"}


def test_the_global_size_limit_caps_every_bucket(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    config = served.auth.config
    assert config is not None
    saved = config.file_size_limit
    config.file_size_limit = 8
    try:
        files = storage_as(served, "service").from_(bucket)
        files.upload("small.txt", b"12345678")
        with pytest.raises(StorageApiError) as big:
            files.upload("big.txt", b"123456789")
    finally:
        config.file_size_limit = saved
    assert error_of(big)[0] == "413"


# ---- hostile keys -----------------------------------------------------------------------------


def _send(served: Served, method: str, path: str) -> tuple[int, str]:
    """A request with the path sent byte for byte (httpx would normalize dot segments)."""
    url = urlsplit(storage_url(served.auth))
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.putrequest(method, url.path + path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {DEV_SERVICE_ROLE_KEY}")
        conn.putheader("Content-Type", "text/plain")
        conn.putheader("Content-Length", "4")
        conn.endheaders(b"evil")
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "key",
    [
        "../escaped.txt",
        "a/../../escaped.txt",
        "%2e%2e%2fescaped.txt",
        "%2E%2E/%2E%2E/escaped.txt",
        "/etc/escaped.txt",
        "%2Fetc%2Fescaped.txt",
        "a%00b.txt",
        "a%5C..%5Cescaped.txt",
        "./escaped.txt",
    ],
)
def test_path_traversal_is_refused_and_writes_nothing(
    served: Served, make_bucket: Any, db_admin: Any, key: str
) -> None:
    bucket = make_bucket()
    assert served.auth.config is not None
    top = Path(served.auth.config.data_dir).parent
    before = files_under(top)
    for method in ("POST", "PUT"):
        status, body = _send(served, method, f"/object/{bucket}/{key}")
        assert status in (400, 404), body
        assert json.loads(body)["statusCode"] in ("400", "404")
    status, body = _send(served, "POST", f"/object/upload/sign/{bucket}/{key}")
    assert status in (400, 404), body
    assert files_under(top) - before == set()
    rows = db_admin.execute(
        "select count(*) from storage.objects where bucket_id = %s", (bucket,)
    ).fetchone()
    assert rows == (0,)


def test_the_authenticated_routes_need_a_token_and_go_through_the_policies(
    served: Served, db_admin: Any, task: str
) -> None:
    path = attachment_path(db_admin, task, SEED_USERS["member"])
    storage_as(served, "member").from_(BUCKET).upload(path, b"members only")
    with raw(served, "viewer") as viewer:
        got = viewer.get(f"/object/authenticated/{BUCKET}/{path}")
        head = viewer.head(f"/object/authenticated/{BUCKET}/{path}")
        info = viewer.get(f"/object/info/authenticated/{BUCKET}/{path}")
    assert got.content == b"members only" and head.headers["Content-Length"] == "12"
    assert info.json()["name"] == path and info.json()["size"] == 12
    with raw(served) as nobody:
        refused = nobody.get(f"/object/authenticated/{BUCKET}/{path}")
        private = nobody.get(f"/object/public/{BUCKET}/{path}")
    assert refused.json()["code"] == "AccessDenied"
    assert private.json()["message"] == "Bucket not found"  # not a public bucket
    with raw(served, "outsider") as outsider:
        hidden = outsider.get(f"/object/info/authenticated/{BUCKET}/{path}")
    assert hidden.json()["error"] == "not_found"
    signed = storage_as(served, "member").from_(BUCKET).create_signed_url(path, 60)
    head_signed = httpx.head(signed["signedURL"], timeout=10)
    assert head_signed.status_code == 200 and head_signed.headers["Content-Length"] == "12"
