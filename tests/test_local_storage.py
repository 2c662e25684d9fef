"""The local Storage (fnkit/local/storage) through the real client and raw HTTP: buckets,
objects, listing, move and copy, upsert, and files that survive a restart.

Every client is the real one (storage3, as supabase-py's `client.storage` builds it) or raw
httpx, against the local Storage that the `fake_auth` fixture serves at
`{fake_auth.url}/storage/v1` on the session database. The helpers at the top are shared with
tests/test_local_storage_*.py.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from fnkit.devenv import DEV_ANON_KEY, DEV_SERVICE_ROLE_KEY
from fnkit.local.storage import create_app
from fnkit.local.storage.suite import classify
from tests.fixtures.server import SEED_USERS, FakeAuth, Served


def storage_url(auth: FakeAuth) -> str:
    return f"{auth.url}/storage/v1"


def user_token(served: Served, who: str) -> str:
    """A user's ES256 access token (as the local Auth signs them), by seed role or uuid."""
    return served.es256(SEED_USERS.get(who, who))


def _key(served: Served, who: str) -> str:
    if who == "service":
        return DEV_SERVICE_ROLE_KEY
    if who == "anon":
        return DEV_ANON_KEY
    return user_token(served, who)


def storage_as(served: Served, who: str) -> SyncStorageClient:
    """supabase-py's Storage client as 'service', 'anon' or a seed user."""
    key = _key(served, who)
    return SyncStorageClient(
        storage_url(served.auth) + "/", {"apiKey": DEV_ANON_KEY, "Authorization": f"Bearer {key}"}
    )


def raw(served: Served, who: str | None = None) -> httpx.Client:
    """An httpx client on the Storage base URL, as `who` (no credentials when None)."""
    headers = {} if who is None else {"Authorization": f"Bearer {_key(served, who)}"}
    return httpx.Client(base_url=storage_url(served.auth), headers=headers, timeout=10)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def make_bucket(served: Served) -> Iterator[Callable[..., str]]:
    """Fresh buckets (service role), emptied and deleted after the test."""
    made: list[str] = []
    admin = storage_as(served, "service")

    def make(**options: Any) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        admin.create_bucket(name, options=options or None)  # type: ignore[arg-type]
        made.append(name)
        return name

    yield make
    for name in made:
        admin.empty_bucket(name)
        admin.delete_bucket(name)


def data_root(served: Served) -> Path:
    assert served.auth.config is not None
    return Path(served.auth.config.data_dir) / "storage"


def error_of(exc: pytest.ExceptionInfo[StorageApiError]) -> tuple[str, str, str]:
    """(statusCode, error, message) of a Storage error, as storage3 parsed it."""
    return str(exc.value.status), str(exc.value.code), exc.value.message


# ---- buckets ----------------------------------------------------------------------------------


def test_bucket_crud_as_the_service_role(served: Served) -> None:
    admin = storage_as(served, "service")
    name = f"crud-{uuid.uuid4().hex[:8]}"
    assert admin.create_bucket(name, options={"public": True, "file_size_limit": 1000}) == {
        "name": name
    }
    bucket = admin.get_bucket(name)
    assert (bucket.id, bucket.public, bucket.file_size_limit) == (name, True, 1000)
    assert bucket.allowed_mime_types is None
    assert name in {b.id for b in admin.list_buckets()}
    listed = admin.list_buckets()[0]
    assert listed.type == "STANDARD"
    admin.update_bucket(name, {"public": False, "allowed_mime_types": ["image/*"]})
    bucket = admin.get_bucket(name)
    assert (bucket.public, bucket.allowed_mime_types) == (False, ["image/*"])
    with pytest.raises(StorageApiError) as duplicate:
        admin.create_bucket(name)
    assert error_of(duplicate) == ("409", "Duplicate", "The resource already exists")
    admin.from_(name).upload("a.png", b"png", {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as not_empty:
        admin.delete_bucket(name)
    assert error_of(not_empty)[0] == "409"
    assert "not empty" in error_of(not_empty)[2]
    admin.empty_bucket(name)
    assert admin.delete_bucket(name) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as gone:
        admin.get_bucket(name)
    assert error_of(gone) == ("404", "Bucket not found", "Bucket not found")


def test_users_cannot_create_or_empty_buckets(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    with raw(served, "member") as client:
        created = client.post("/bucket", json={"name": f"mine-{uuid.uuid4().hex[:6]}"})
        emptied = client.post(f"/bucket/{bucket}/empty", json={})
        listed = client.get("/bucket")
    assert created.status_code == 400
    assert created.json() == {
        "statusCode": "403",
        "code": "AccessDenied",
        "error": "Unauthorized",
        "message": "new row violates row-level security policy",
    }
    assert emptied.status_code == 403
    assert emptied.json()["message"] == "Access denied: Invalid role"
    assert listed.status_code == 200 and listed.json() == []  # no policy shows any bucket


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=0", 400), ("offset=-1", 400), ("limit=x", 400), ("limit=1&offset=0", 200)],
)
def test_bucket_listing_checks_its_paging(served: Served, query: str, status: int) -> None:
    with raw(served, "service") as client:
        response = client.get(f"/bucket?{query}")
    assert response.status_code == status, response.text
    if status == 200:
        assert len(response.json()) == 1
    else:
        assert response.json()["statusCode"] == "400"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "bad/name"}, "400", "InvalidBucketName"),
        ({"name": " padded"}, "400", "InvalidBucketName"),
        ({"name": ".."}, "400", "InvalidBucketName"),
        ({"name": "ok", "file_size_limit": "20XB"}, "400", "InvalidRequest"),
        ({"name": "ok", "file_size_limit": 10**12}, "413", "EntityTooLarge"),
        ({"name": "ok", "allowed_mime_types": ["not a type"]}, "415", "InvalidMimeType"),
    ],
)
def test_bad_buckets_are_refused(
    served: Served, body: dict[str, Any], status: str, code: str
) -> None:
    with raw(served, "service") as client:
        response = client.post("/bucket", json=body)
    assert response.status_code == 400
    assert (response.json()["statusCode"], response.json()["code"]) == (status, code)


# ---- tokens -----------------------------------------------------------------------------------


def test_missing_and_bad_tokens_answer_as_storage_does(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    storage_as(served, "service").from_(bucket).upload("a.txt", b"a")
    expired = served.es256(SEED_USERS["member"], expires_in=-60)
    with raw(served) as client:
        none = client.post(f"/object/{bucket}/b.txt", content=b"b")
        bad = client.get("/bucket", headers={"Authorization": "Bearer not.a.jwt"})
        old = client.get("/bucket", headers={"Authorization": f"Bearer {expired}"})
        anonymous_read = client.get(f"/object/{bucket}/a.txt")
    assert none.status_code == 400
    assert none.json() == {
        "statusCode": "403",
        "code": "AccessDenied",
        "error": "Unauthorized",
        "message": "Invalid Compact JWS",
    }
    assert bad.json()["statusCode"] == "403" and old.json()["statusCode"] == "403"
    assert "exp" in old.json()["message"]
    # Reads allow a missing token but then see public buckets only.
    assert anonymous_read.json()["message"] == "Bucket not found"


def test_unknown_routes_are_404_in_storage_shape(served: Served) -> None:
    with raw(served, "service") as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["message"] == "Route GET:/nowhere not found"


# ---- objects ----------------------------------------------------------------------------------


def test_upload_download_info_and_upsert(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    files = storage_as(served, "service").from_(bucket)
    files.upload(
        "docs/report.txt",
        b"first",
        {"content-type": "text/plain", "cache-control": "60", "metadata": {"k": "v"}},
    )
    assert files.download("docs/report.txt") == b"first"
    info = files.info("docs/report.txt")
    assert (info["size"], info["content_type"], info["cache_control"]) == (
        5,
        "text/plain",
        "max-age=60",
    )
    assert info["metadata"] == {"k": "v"} and info["etag"].startswith('"')
    with pytest.raises(StorageApiError) as taken:
        files.upload("docs/report.txt", b"second")
    assert error_of(taken) == ("409", "Duplicate", "The resource already exists")
    files.upload("docs/report.txt", b"second", {"upsert": "true"})
    assert files.download("docs/report.txt") == b"second"
    files.update("docs/report.txt", b"third")
    assert files.download("docs/report.txt") == b"third"
    versions = [p for p in files_under(data_root(served) / bucket)]
    assert len(versions) == 1  # replaced versions are removed
    assert files.exists("docs/report.txt") and not files.exists("docs/missing.txt")


def test_raw_body_upload_and_http_details(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket(public=True)
    with raw(served, "service") as client:
        put = client.post(
            f"/object/{bucket}/raw.bin",
            content=b"0123456789",
            headers={
                "Content-Type": "application/octet-stream",
                "x-metadata": base64.b64encode(b'{"a": 1}').decode(),
            },
        )
        again = client.post(f"/object/{bucket}/raw.bin", content=b"again")
        head = client.head(f"/object/{bucket}/raw.bin")
        ranged = client.get(f"/object/{bucket}/raw.bin", headers={"Range": "bytes=2-4"})
        cached = client.get(
            f"/object/{bucket}/raw.bin", headers={"If-None-Match": head.headers["ETag"]}
        )
        info = client.get(f"/object/info/{bucket}/raw.bin").json()
    assert put.status_code == 200 and put.json()["Key"] == f"{bucket}/raw.bin"
    assert again.status_code == 400
    assert again.json() == {
        "statusCode": "409",
        "code": "KeyAlreadyExists",
        "error": "Duplicate",
        "message": "The resource already exists",
    }
    assert head.status_code == 200 and head.headers["Content-Length"] == "10"
    assert head.headers["Cache-Control"] == "no-cache"
    assert ranged.status_code == 206 and ranged.content == b"234"
    assert ranged.headers["Content-Range"] == "bytes 2-4/10"
    assert cached.status_code == 304
    assert info["metadata"] == {"a": 1}
    with raw(served) as anonymous:  # a public bucket: no credentials needed
        public = anonymous.get(f"/object/public/{bucket}/raw.bin", params={"download": "x.bin"})
    assert public.content == b"0123456789"
    assert "filename=x.bin" in public.headers["Content-Disposition"]


def test_list_move_copy_remove(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    files = storage_as(served, "service").from_(bucket)
    for name in ("a.txt", "b.txt", "dir/c.txt", "dir/sub/d.txt"):
        files.upload(name, name.encode())
    top = files.list()
    assert [(e["name"], e["id"] is None) for e in top] == [
        ("a.txt", False),
        ("b.txt", False),
        ("dir", True),
    ]
    assert top[0]["metadata"]["size"] == 5 and top[2]["metadata"] is None
    assert [e["name"] for e in files.list("dir")] == ["c.txt", "sub"]
    assert [e["name"] for e in files.list("", {"search": "b"})] == ["b.txt"]
    assert [e["name"] for e in files.list("", {"limit": 1, "offset": 1})] == ["b.txt"]
    desc = files.list("", {"sortBy": {"column": "name", "order": "desc"}})
    assert [e["name"] for e in desc] == ["dir", "b.txt", "a.txt"]
    assert files.move("a.txt", "dir/moved.txt")["message"] == "Successfully moved"
    copied = files.copy("b.txt", "dir/copied.txt")
    assert copied["Key"] == f"{bucket}/dir/copied.txt"
    assert files.download("dir/moved.txt") == b"a.txt"
    assert files.download("dir/copied.txt") == b"b.txt"
    assert not files.exists("a.txt") and files.exists("b.txt")
    removed = files.remove(["b.txt", "dir/moved.txt", "never-there.txt"])
    assert sorted(r["name"] for r in removed) == ["b.txt", "dir/moved.txt"]
    assert [e["name"] for e in files.list()] == ["dir"]
    assert len(files_under(data_root(served) / bucket)) == 3


def test_a_restart_keeps_every_file(served: Served, make_bucket: Any) -> None:
    """A new app on the same data dir and database serves what the first one stored."""
    bucket = make_bucket()
    storage_as(served, "service").from_(bucket).upload("keep/me.txt", b"still here")
    assert served.auth.config is not None
    restarted = create_app(served.auth.config)
    server = make_server("127.0.0.1", 0, DispatcherMiddleware(restarted, {}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/object/{bucket}/keep/me.txt"
        response = httpx.get(url, headers={"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"})
    finally:
        server.shutdown()
        restarted.ctx.db.close()
    assert response.status_code == 200 and response.content == b"still here"


def test_list_v2_pages_with_a_cursor_and_folds_folders(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    files = storage_as(served, "service").from_(bucket)
    for name in ("top.txt", "dir/a.txt", "dir/b.txt", "dir/c.txt", "dir/sub/d.txt"):
        files.upload(name, name.encode())
    folded = files.list_v2({"with_delimiter": True})
    assert [f.name for f in folded.folders] == ["dir/"] and folded.folders[0].key == "dir"
    assert [o.name for o in folded.objects] == ["top.txt"]
    seen: list[str] = []
    cursor = ""
    while True:
        page = files.list_v2(
            {"with_delimiter": True, "prefix": "dir/", "limit": 2, "cursor": cursor}
        )
        seen += [o.name for o in page.objects] + [f.name for f in page.folders]
        if not page.hasNext:
            break
        cursor = page.nextCursor or ""
    assert seen == ["dir/a.txt", "dir/b.txt", "dir/c.txt", "dir/sub/"]
    flat = files.list_v2({"prefix": "dir/"})
    assert [o.name for o in flat.objects] == [
        "dir/a.txt",
        "dir/b.txt",
        "dir/c.txt",
        "dir/sub/d.txt",
    ]


def test_the_suite_runner_counts_out_of_scope_failures_apart() -> None:
    report = classify(
        {
            "tests/_sync/test_client.py::test_client_upload": {"outcome": "passed"},
            "tests/_sync/test_client.py::test_transform_render": {
                "outcome": "failed",
                "message": "boom",
            },
            "tests/_sync/test_client.py::test_client_copy": {
                "outcome": "failed",
                "message": "StorageApiError: nope",
            },
        }
    )
    assert (report.count("passed"), report.count("failed"), report.count("out-of-scope")) == (
        1,
        1,
        1,
    )
    failed = next(o for o in report.outcomes if o.status == "failed")
    assert failed.reason == "StorageApiError: nope"


def test_a_failed_metadata_write_leaves_no_file(
    served: Served, make_bucket: Any, db_admin: Any
) -> None:
    """The row write fails after the bytes were placed: the new file goes with it."""
    bucket = make_bucket()
    files = storage_as(served, "service").from_(bucket)
    files.upload("kept.txt", b"old")
    # A trigger that refuses Storage's own (superuser) row write in this bucket only; the
    # permission probe before it runs as the service role and passes.
    trigger = f"refuse_{uuid.uuid4().hex[:8]}"
    db_admin.execute(
        f"create function public.{trigger}() returns trigger language plpgsql as $$"
        " begin if current_setting('is_superuser') = 'on' then"
        " raise exception 'metadata write failed'; end if; return new; end $$"
    )
    db_admin.execute(
        f"create trigger {trigger} before insert or update on storage.objects for each row"
        f" when (new.bucket_id = '{bucket}') execute function public.{trigger}()"
    )
    try:
        with pytest.raises(StorageApiError) as failed:
            files.upload("new.txt", b"never stored")
        with pytest.raises(StorageApiError):
            files.update("kept.txt", b"never replaced")
    finally:
        db_admin.execute(f"drop trigger {trigger} on storage.objects")
        db_admin.execute(f"drop function public.{trigger}()")
    assert error_of(failed)[0] == "500"
    assert "metadata write failed" not in failed.value.message  # no driver text leaks
    assert files.download("kept.txt") == b"old"
    assert not files.exists("new.txt")
    assert len(files_under(data_root(served) / bucket)) == 1


def test_concurrent_upserts_leave_one_version(served: Served, make_bucket: Any) -> None:
    bucket = make_bucket()
    bodies = [f"body {n}".encode() for n in range(6)]

    def put(body: bytes) -> None:
        storage_as(served, "service").from_(bucket).update("same.txt", body)

    threads = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = storage_as(served, "service").from_(bucket).download("same.txt")
    assert stored in bodies
    versions = files_under(data_root(served) / bucket)
    assert len(versions) == 1 and versions.pop().read_bytes() == stored


@pytest.mark.parametrize("content_type", ["thisisnotarealmimetype", "image/\tjpg"])
def test_a_malformed_content_type_is_refused(
    served: Served, make_bucket: Any, content_type: str
) -> None:
    bucket = make_bucket()
    with raw(served, "service") as client:
        response = client.post(
            f"/object/{bucket}/x.png", content=b"x", headers={"Content-Type": content_type}
        )
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": "415",
        "code": "InvalidMimeType",
        "error": "invalid_mime_type",
        "message": "Invalid Content-Type header",
    }


def test_a_connection_the_server_ended_is_replaced_not_a_500(
    served: Served, db_admin: Any
) -> None:
    """After Postgres ends Storage's idle connections (a restart, pg_terminate_backend, as the
    fault tests do), the next request gets a fresh one."""
    admin = storage_as(served, "service")
    assert admin.list_buckets()  # the pool holds a connection now
    db_admin.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()"
        " and application_name = '' and state = 'idle' and backend_type = 'client backend'"
    )
    for _ in range(3):  # every connection of the pool, not only the first one handed out
        assert "attachments" in {bucket.id for bucket in admin.list_buckets()}
