"""attachments: rows in Postgres, files in Supabase Storage through signed URLs.

Real HTTP to the served function on the seeded database, and the local Supabase Storage
(fnkit/local/storage) behind it, end to end: the client uploads the bytes to the signed URL the
function answers and downloads them again from the signed download URL. respx stands in for
Storage only where a test needs it to misbehave (5xx, refusals, timeouts, unreachable): one
route is faked, everything else passes through to the real services.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import httpx
import jwt
import psycopg
import pytest
import respx
from storage3 import SyncStorageClient
from werkzeug.serving import make_server

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET, DEV_SERVICE_ROLE_KEY
from tests.fixtures.server import Served, as_user
from tests.test_fn_members import (
    MEMBER,
    UPSTREAM_SECRET,
    assert_error,
    copy_client,
    make_user,
)

PDF = {"filename": "report.pdf", "content_type": "application/pdf", "size": 1234}
BUCKET = "attachments"


# ---- setup ----------------------------------------------------------------------------------


def make_attachment(
    db: psycopg.Connection[Any], task: str, uploaded_by: str = MEMBER, name: str = "a.txt"
) -> tuple[str, str]:
    """An attachment row as a finished upload would leave it: (id, storage_path)."""
    row = db.execute(
        "insert into public.attachments (task_id, filename, content_type, size_bytes, uploaded_by)"
        " values (%s, %s, 'text/plain', 10, %s) returning id::text, storage_path",
        (task, name, uploaded_by),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def attachment_count(db: psycopg.Connection[Any], task: str) -> int:
    row = db.execute(
        "select count(*) from public.attachments where task_id = %s", (task,)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def located_task(team: str, task: str) -> tuple[str, str]:
    """The shared `task` fixture with its workspace (tests/fixtures/teams.py)."""
    return team, task


# ---- the local Supabase Storage -------------------------------------------------------------


def storage_base(served: Served) -> str:
    return f"{served.auth.url}/storage/v1"


def admin_files(served: Served) -> Any:
    """The attachments bucket through supabase-py's Storage client, as the service role."""
    client = SyncStorageClient(
        storage_base(served) + "/",
        {"apiKey": DEV_ANON_KEY, "Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"},
    )
    return client.from_(BUCKET)


def store_file(served: Served, path: str, data: bytes = b"0123456789") -> None:
    """The file of an attachment, as a finished upload leaves it."""
    admin_files(served).upload(path, data, {"content-type": "text/plain"})


def object_names(db: psycopg.Connection[Any], prefix: str) -> list[str]:
    rows = db.execute(
        "select name from storage.objects where bucket_id = %s and name like %s order by name",
        (BUCKET, prefix + "%"),
    ).fetchall()
    return [row[0] for row in rows]


def object_files(served: Served, path: str) -> list[Path]:
    """The version files of an object on the local Storage's disk."""
    assert served.auth.config is not None
    folder = Path(served.auth.config.data_dir) / "storage" / BUCKET / path
    return sorted(folder.glob("#*")) if folder.is_dir() else []


def token_claims(url: str) -> dict[str, Any]:
    token = parse_qs(urlsplit(url).query)["token"][0]
    claims: dict[str, Any] = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])
    return claims


class StorageFault:
    """One Storage route made to misbehave with respx; every other request is real.

    respx starts at `on()`, so setup before it (storing a file) talks to the real Storage."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def on(self, method: str, path: str, side_effect: Any) -> respx.Route:
        router = self._stack.enter_context(respx.mock(assert_all_called=False))
        route = router.route(method=method, path__startswith=path)
        route.side_effect = side_effect
        router.route().pass_through()
        return route


@pytest.fixture
def storage_fault(served: Served) -> Iterator[StorageFault]:
    with contextlib.ExitStack() as stack:
        yield StorageFault(stack)


SIGN_UPLOAD = "/storage/v1/object/upload/sign/"
SIGN_DOWNLOAD = "/storage/v1/object/sign/"
REMOVE = "/storage/v1/object/attachments"


def storage_error(status: int, upstream_status: str | None = None) -> Callable[..., httpx.Response]:
    body = {
        "statusCode": upstream_status or str(status),
        "error": "error",
        "message": UPSTREAM_SECRET,
    }
    return lambda request: httpx.Response(status, json=body)


def _raise(exc: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc(UPSTREAM_SECRET, request=request)

    return fail


# ---- POST /attachments ----------------------------------------------------------------------


def test_an_attachment_is_uploaded_and_downloaded_end_to_end(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    """POST → signed upload URL → the bytes PUT there with no credentials → GET → signed
    download URL → the same bytes."""
    ws, task_id = located_task
    with as_user(served, "member") as client:
        response = client.post("/attachments", json={"task_id": task_id, **PDF})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    path = f"{ws}/{task_id}/{data['id']}"
    assert data["storage_path"] == path
    assert data["workspace_id"] == ws and data["task_id"] == task_id
    assert data["filename"] == "report.pdf" and data["content_type"] == "application/pdf"
    assert data["size_bytes"] == 1234 and data["uploaded_by"] == MEMBER
    upload = data["upload"]
    assert upload["path"] == path
    assert upload["url"] == (
        f"{storage_base(served)}/object/upload/sign/{BUCKET}/{path}?token={upload['token']}"
    )
    claims = token_claims(upload["url"])
    assert claims["url"] == f"{BUCKET}/{path}" and claims["scope"] == "upload"
    assert "owner" not in claims  # signed by the function's service role, not the user
    assert attachment_count(db_admin, task_id) == 1
    assert object_names(db_admin, path) == []  # nothing in Storage until the client uploads

    content = b"%PDF-1.7 " + uuid.uuid4().bytes
    put = httpx.put(
        upload["url"], content=content, headers={"Content-Type": "application/pdf"}, timeout=10
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"Key": f"{BUCKET}/{path}"}
    assert object_names(db_admin, path) == [path]
    assert len(object_files(served, path)) == 1

    with as_user(served, "viewer") as client:
        fetched = client.get(f"/attachments/{data['id']}")
    assert fetched.status_code == 200, fetched.text
    download = fetched.json()["data"]["download"]
    assert download["expires_in"] == 60
    assert download["url"].startswith(f"{storage_base(served)}/object/sign/{BUCKET}/{path}?token=")
    signed = token_claims(download["url"])
    assert signed["exp"] - signed["iat"] == 60 and signed["scope"] == "download"
    got = httpx.get(download["url"], timeout=10)
    assert got.status_code == 200 and got.content == content
    assert got.headers["Content-Type"] == "application/pdf"


def test_an_upload_url_cannot_be_used_for_another_object(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    with as_user(served, "member") as client:
        first = client.post("/attachments", json={"task_id": task_id, **PDF}).json()["data"]
        second = client.post("/attachments", json={"task_id": task_id, **PDF}).json()["data"]
    elsewhere = second["upload"]["url"].split("?")[0] + "?token=" + first["upload"]["token"]
    response = httpx.put(elsewhere, content=b"x", timeout=10)
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidSignature"
    assert object_names(db_admin, second["storage_path"]) == []


def test_who_may_attach(served: Served, db_admin: Any, located_task: tuple[str, str]) -> None:
    _, task_id = located_task
    expected = {
        "owner": 201,
        "admin": 201,
        "member": 201,
        "viewer": 403,
        "outsider": 404,
        "anon": 401,
    }
    for who, status in expected.items():
        with as_user(served, who) as client:
            response = client.post("/attachments", json={"task_id": task_id, **PDF})
        assert response.status_code == status, (who, response.text)
    assert attachment_count(db_admin, task_id) == 3
    with as_user(served, "member") as client:
        missing = client.post("/attachments", json={"task_id": str(uuid.uuid4()), **PDF})
    assert_error(missing, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"size": 25 * 1_048_576 + 1}, ["body", "size"]),
        ({"size": -1}, ["body", "size"]),
        ({"size": "12"}, ["body", "size"]),
        ({"size": 1.5}, ["body", "size"]),
        ({"content_type": "text/html"}, ["body", "content_type"]),
        ({"content_type": "image/svg+xml"}, ["body", "content_type"]),
        ({"content_type": "pdf"}, ["body", "content_type"]),
        ({"content_type": "text/plain; charset=utf-8\r\nX: y"}, ["body", "content_type"]),
        ({"filename": "../etc/passwd"}, ["body", "filename"]),
        ({"filename": "a\\b.txt"}, ["body", "filename"]),
        ({"filename": "evil\x00.txt"}, ["body", "filename"]),
        ({"filename": "two\nlines.txt"}, ["body", "filename"]),
        ({"filename": "rtl\u202etxt.exe"}, ["body", "filename"]),
        ({"filename": ".."}, ["body", "filename"]),
        ({"filename": "   "}, ["body", "filename"]),
        ({"filename": "x" * 256}, ["body", "filename"]),
        ({"task_id": "not-a-uuid"}, ["body", "task_id"]),
        ({"extra": True}, ["body", "extra"]),
    ],
)
def test_bad_attachments_are_refused_before_anything_is_written(
    served: Served,
    db_admin: Any,
    located_task: tuple[str, str],
    change: dict[str, Any],
    loc: list[str],
) -> None:
    _, task_id = located_task
    with as_user(served, "member") as client:
        response = client.post("/attachments", json={"task_id": task_id, **PDF, **change})
    body = assert_error(response, 422, "VALIDATION_FAILED")
    assert [d["loc"] for d in body["error"]["details"]] == [loc]
    assert attachment_count(db_admin, task_id) == 0


def test_size_and_type_problems_are_reported_together_and_valid_names_pass(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    with as_user(served, "member") as client:
        both = client.post(
            "/attachments",
            json={"task_id": task_id, **PDF, "size": 10**12, "content_type": "video/mp4"},
        )
        unicode_name = client.post(
            "/attachments",
            json={
                "task_id": task_id,
                "filename": "\u00dcbersicht \u2013 Q3 (final).xlsx",
                "content_type": "Application/VND.openxmlformats-officedocument.spreadsheetml.sheet",
                "size": 0,
            },
        )
    details = assert_error(both, 422, "VALIDATION_FAILED")["error"]["details"]
    assert [d["loc"] for d in details] == [["body", "size"], ["body", "content_type"]]
    assert "26214400 bytes" in details[0]["message"]
    assert "application/pdf" in details[1]["message"]
    assert unicode_name.status_code == 201, unicode_name.text
    assert unicode_name.json()["data"]["filename"] == "\u00dcbersicht \u2013 Q3 (final).xlsx"
    assert unicode_name.json()["data"]["content_type"].startswith("application/vnd.openxml")


def test_limits_come_from_the_settings(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    with copy_client(
        served,
        "attachments",
        "member",
        ATTACHMENT_MAX_BYTES="100",
        ATTACHMENT_CONTENT_TYPES="image/*,text/plain",
    ) as client:
        image = client.post(
            "/attachments",
            json={
                "task_id": task_id,
                "filename": "a.png",
                "content_type": "image/png",
                "size": 100,
            },
        )
        text = client.post(
            "/attachments",
            json={
                "task_id": task_id,
                "filename": "a.txt",
                "content_type": "text/plain; charset=utf-8",
                "size": 1,
            },
        )
        pdf = client.post("/attachments", json={"task_id": task_id, **PDF, "size": 1})
        big = client.post(
            "/attachments",
            json={
                "task_id": task_id,
                "filename": "b.png",
                "content_type": "image/png",
                "size": 101,
            },
        )
    assert image.status_code == 201, image.text
    assert text.status_code == 201, text.text
    assert assert_error(pdf, 422, "VALIDATION_FAILED")["error"]["details"][0]["loc"] == [
        "body",
        "content_type",
    ]
    assert assert_error(big, 422, "VALIDATION_FAILED")["error"]["details"][0]["loc"] == [
        "body",
        "size",
    ]
    assert attachment_count(db_admin, task_id) == 2


@pytest.mark.parametrize(
    ("side_effect", "status", "code"),
    [
        (storage_error(500), 503, "UNAVAILABLE"),
        (storage_error(503), 503, "UNAVAILABLE"),
        (storage_error(400, "403"), 503, "UNAVAILABLE"),  # Storage refused our key
        (storage_error(400, "404"), 503, "UNAVAILABLE"),  # the bucket is missing
        (storage_error(409), 409, "CONFLICT"),
        (storage_error(400), 422, "VALIDATION_FAILED"),
        (
            lambda request: httpx.Response(200, json={"url": "/object/upload/sign/x"}),
            503,
            "UNAVAILABLE",
        ),
        (lambda request: httpx.Response(502, text=UPSTREAM_SECRET), 503, "UNAVAILABLE"),
        (_raise(httpx.ReadTimeout), 503, "UNAVAILABLE"),
        (_raise(httpx.ConnectError), 503, "UNAVAILABLE"),
    ],
    ids=[
        "500",
        "503",
        "403",
        "404",
        "409",
        "400",
        "no-token",
        "502-text",
        "timeout",
        "unreachable",
    ],
)
def test_a_storage_failure_leaves_no_row_behind(
    served: Served,
    db_admin: Any,
    located_task: tuple[str, str],
    storage_fault: StorageFault,
    side_effect: Any,
    status: int,
    code: str,
) -> None:
    _, task_id = located_task
    sign_upload = storage_fault.on("POST", SIGN_UPLOAD, side_effect)
    with as_user(served, "member") as client:
        response = client.post("/attachments", json={"task_id": task_id, **PDF})
    assert_error(response, status, code)
    assert UPSTREAM_SECRET not in response.text and DEV_SERVICE_ROLE_KEY not in response.text
    assert sign_upload.call_count == 1
    assert attachment_count(db_admin, task_id) == 0


def test_a_slow_storage_is_503_within_the_timeout_and_leaves_no_row(
    served: Served, db_admin: Any, located_task: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server that answers too late: httpx's read timeout must end the wait."""
    from shared import supabase_admin

    monkeypatch.setattr(supabase_admin, "TIMEOUT_S", 0.5)
    slow = flask.Flask("slow-storage")

    @slow.post("/storage/v1/object/upload/sign/<path:name>")
    def hang(name: str) -> Any:
        time.sleep(3)
        return {"url": f"/object/upload/sign/{name}?token=late"}

    server = make_server("127.0.0.1", 0, slow, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slow_url = f"http://127.0.0.1:{server.server_port}"
    _, task_id = located_task
    try:
        with copy_client(served, "attachments", "member", SUPABASE_URL=slow_url) as client:
            started = time.monotonic()
            response = client.post("/attachments", json={"task_id": task_id, **PDF})
            elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert_error(response, 503, "UNAVAILABLE")
    assert elapsed < 2.5
    assert attachment_count(db_admin, task_id) == 0


def test_an_attachment_post_replays_with_its_idempotency_key(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    with as_user(served, "member") as client:
        first = client.post("/attachments", json={"task_id": task_id, **PDF}, headers=headers)
        again = client.post("/attachments", json={"task_id": task_id, **PDF}, headers=headers)
        other = client.post(
            "/attachments", json={"task_id": task_id, **PDF, "size": 1}, headers=headers
        )
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert attachment_count(db_admin, task_id) == 1  # one row, one upload URL (replayed)


# ---- GET /attachments -----------------------------------------------------------------------


def test_list_pages_without_skipping_or_repeating(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    created = [make_attachment(db_admin, task_id, name=f"f{n}.txt")[0] for n in range(5)]
    seen: list[str] = []
    cursor = None
    with as_user(served, "viewer") as client:
        while True:
            params = {"task_id": task_id, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = client.get("/attachments", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            seen += [row["id"] for row in body["data"]]
            assert body["meta"]["pagination"]["limit"] == 2
            cursor = body["meta"]["pagination"]["next_cursor"]
            if len(seen) == 2:  # rows added between pages show up at the end, once
                created.append(make_attachment(db_admin, task_id, name="late.txt")[0])
            if cursor is None:
                break
    assert seen == created


def test_list_refuses_outsiders_anon_and_bad_cursors(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    make_attachment(db_admin, task_id)
    with as_user(served, "outsider") as client:
        assert_error(client.get("/attachments", params={"task_id": task_id}), 404, "NOT_FOUND")
    with as_user(served, "anon") as client:
        assert_error(
            client.get("/attachments", params={"task_id": task_id}), 401, "UNAUTHENTICATED"
        )
    with as_user(served, "member") as client:
        assert_error(
            client.get("/attachments", params={"task_id": str(uuid.uuid4())}), 404, "NOT_FOUND"
        )
        for params in (
            {"task_id": task_id, "cursor": "garbage"},
            {"task_id": task_id, "limit": 0},
            {"task_id": task_id, "limit": 101},
            {},
        ):
            assert_error(client.get("/attachments", params=params), 422, "VALIDATION_FAILED")


# ---- GET /attachments/{id} ------------------------------------------------------------------


def test_get_answers_a_short_lived_download_url(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    attachment, path = make_attachment(db_admin, task_id)
    store_file(served, path, b"the file")
    with as_user(served, "viewer") as client:
        response = client.get(f"/attachments/{attachment}")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["id"] == attachment and data["storage_path"] == path
    url = data["download"]["url"]
    assert data["download"]["expires_in"] == 60
    assert url.startswith(f"{storage_base(served)}/object/sign/{BUCKET}/{path}?token=")
    assert httpx.get(url, timeout=10).content == b"the file"

    for who, status in {"outsider": 404, "anon": 401}.items():
        with as_user(served, who) as client:
            assert client.get(f"/attachments/{attachment}").status_code == status
    with as_user(served, "member") as client:
        assert_error(client.get(f"/attachments/{uuid.uuid4()}"), 404, "NOT_FOUND")
        assert_error(client.get("/attachments/nope"), 422, "VALIDATION_FAILED")


def test_a_file_never_uploaded_is_not_found(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    """Storage answers 400 with statusCode "404" for a missing object; the function says 404."""
    _, task_id = located_task
    attachment, _ = make_attachment(db_admin, task_id)
    with as_user(served, "member") as client:
        missing = client.get(f"/attachments/{attachment}")
    assert "not found" in assert_error(missing, 404, "NOT_FOUND")["error"]["message"]


def test_a_slow_download_signature_is_503(
    served: Served, db_admin: Any, located_task: tuple[str, str], storage_fault: StorageFault
) -> None:
    _, task_id = located_task
    attachment, _ = make_attachment(db_admin, task_id)
    storage_fault.on("POST", SIGN_DOWNLOAD, _raise(httpx.ReadTimeout))
    with as_user(served, "member") as client:
        slow = client.get(f"/attachments/{attachment}")
    assert_error(slow, 503, "UNAVAILABLE")
    assert UPSTREAM_SECRET not in slow.text


# ---- DELETE /attachments/{id} ---------------------------------------------------------------


def test_delete_removes_the_row_and_the_object(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    attachment, path = make_attachment(db_admin, task_id, uploaded_by=MEMBER)
    store_file(served, path)
    assert object_names(db_admin, path) == [path] and object_files(served, path)
    with as_user(served, "member") as client:
        response = client.delete(f"/attachments/{attachment}")
        assert response.status_code == 204 and response.content == b""
        assert_error(client.delete(f"/attachments/{attachment}"), 404, "NOT_FOUND")
    assert attachment_count(db_admin, task_id) == 0
    assert object_names(db_admin, path) == [] and object_files(served, path) == []


def test_deleting_an_attachment_whose_file_never_came_succeeds(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    attachment, _ = make_attachment(db_admin, task_id, uploaded_by=MEMBER)
    with as_user(served, "member") as client:
        assert client.delete(f"/attachments/{attachment}").status_code == 204
    assert attachment_count(db_admin, task_id) == 0


def test_who_may_delete(served: Served, db_admin: Any, located_task: tuple[str, str]) -> None:
    ws, task_id = located_task
    other_member, _ = make_user(db_admin)
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')",
        (ws, other_member),
    )
    attachment, path = make_attachment(db_admin, task_id, uploaded_by=MEMBER)
    store_file(served, path)
    for who, status in {"viewer": 403, "outsider": 404, "anon": 401, other_member: 403}.items():
        with as_user(served, who) as client:
            assert client.delete(f"/attachments/{attachment}").status_code == status, who
    assert attachment_count(db_admin, task_id) == 1
    assert object_names(db_admin, path) == [path]
    for who in ("owner", "admin"):
        attachment, path = make_attachment(db_admin, task_id, uploaded_by=MEMBER)
        store_file(served, path)
        with as_user(served, who) as client:
            assert client.delete(f"/attachments/{attachment}").status_code == 204, who
        assert object_names(db_admin, path) == []
    assert attachment_count(db_admin, task_id) == 1


@pytest.mark.parametrize(
    "side_effect", [storage_error(500), _raise(httpx.ReadTimeout), storage_error(400, "403")]
)
def test_a_failed_object_removal_keeps_the_row(
    served: Served,
    db_admin: Any,
    located_task: tuple[str, str],
    storage_fault: StorageFault,
    side_effect: Any,
) -> None:
    _, task_id = located_task
    attachment, _ = make_attachment(db_admin, task_id)
    remove = storage_fault.on("DELETE", REMOVE, side_effect)
    with as_user(served, "admin") as client:
        response = client.delete(f"/attachments/{attachment}")
    assert_error(response, 503, "UNAVAILABLE")
    assert remove.call_count == 1
    assert attachment_count(db_admin, task_id) == 1


# ---- local mode: no service role key ------------------------------------------------------


def test_without_a_secret_key_storage_routes_are_503_and_the_list_works(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    attachment, _ = make_attachment(db_admin, task_id)
    no_keys = {"SUPABASE_SECRET_KEY": None, "SUPABASE_SERVICE_ROLE_KEY": None}
    with copy_client(served, "attachments", "member", **no_keys) as client:
        created = client.post("/attachments", json={"task_id": task_id, **PDF})
        fetched = client.get(f"/attachments/{attachment}")
        deleted = client.delete(f"/attachments/{attachment}")
        listed = client.get("/attachments", params={"task_id": task_id})
    for response in (created, fetched, deleted):
        body = assert_error(response, 503, "UNAVAILABLE")
        assert "SUPABASE_SECRET_KEY" in body["error"]["message"]
        assert "SUPABASE_SERVICE_ROLE_KEY" in body["error"]["message"]
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["data"]] == [attachment]
    assert attachment_count(db_admin, task_id) == 1  # nothing created, nothing deleted


def test_supabase_py_is_loaded_only_on_first_use() -> None:
    """The functions import shared.supabase_admin at cold start; it must not pull supabase-py."""
    import subprocess
    import sys

    from tests.fixtures.server import ROOT

    code = (
        "import sys; import shared.supabase_admin; "
        "print(any(m == 'supabase' or m.startswith('supabase.') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_openapi_declares_every_route(served: Served) -> None:
    with served.client() as client:
        doc = client.get("/attachments/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/attachments"]) == {"get", "post"}
    assert set(paths["/attachments/{id}"]) == {"get", "delete"}
    assert paths["/attachments"]["post"]["x-rate-limit"]["policy"] == "write"
    assert "201" in paths["/attachments"]["post"]["responses"]


# ---- files left behind by cascades ----------------------------------------------------------


def test_deleting_a_task_queues_its_files_and_purge_removes_them(
    served: Served, db_admin: Any, located_task: tuple[str, str]
) -> None:
    _, task_id = located_task
    _, path = make_attachment(db_admin, task_id, uploaded_by=MEMBER)
    store_file(served, path)
    with as_user(served, "owner") as client:
        assert client.delete(f"/tasks/{task_id}").status_code in (200, 204)
    queued = db_admin.execute(
        "select name from private.storage_orphans where name = %s", (path,)
    ).fetchall()
    assert queued == [(path,)]
    assert object_names(db_admin, path) == [path]  # the file outlives its row until the purge
    with as_user(served, "owner") as client:
        assert_error(client.post("/attachments/purge"), 401, "UNAUTHENTICATED")
    with served.client(Authorization=f"Bearer {DEV_SERVICE_ROLE_KEY}") as client:
        response = client.post("/attachments/purge")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["removed"] >= 1
    assert object_names(db_admin, path) == [] and object_files(served, path) == []
    assert (
        db_admin.execute(
            "select count(*) from private.storage_orphans where name = %s", (path,)
        ).fetchone()[0]
        == 0
    )


def test_purge_keeps_the_queue_when_storage_fails(
    served: Served, db_admin: Any, located_task: tuple[str, str], storage_fault: StorageFault
) -> None:
    _, task_id = located_task
    _, path = make_attachment(db_admin, task_id, uploaded_by=MEMBER)
    store_file(served, path)
    db_admin.execute(
        "delete from public.projects where id = (select project_id from public.tasks where id = %s)",
        (task_id,),
    )
    # A superuser's cascade (no caller) also queues: depth > 1 is what counts.
    assert (
        db_admin.execute(
            "select count(*) from private.storage_orphans where name = %s", (path,)
        ).fetchone()[0]
        == 1
    )
    storage_fault.on("DELETE", REMOVE, storage_error(500))
    with served.client(Authorization=f"Bearer {DEV_SERVICE_ROLE_KEY}") as client:
        assert_error(client.post("/attachments/purge"), 503, "UNAVAILABLE")
    assert (
        db_admin.execute(
            "select count(*) from private.storage_orphans where name = %s", (path,)
        ).fetchone()[0]
        == 1
    )
    assert object_names(db_admin, path) == [path]
