"""Hostile input against the local Storage (`/storage/v1`), over real HTTP on the session's
services: forged and broken tokens on every authenticated route, object keys that try to leave
their bucket (`../`, percent-encoded, absolute, NUL, backslashes, over-long, unicode look-alikes),
uploads over the bucket's size limit or of a type it refuses, a viewer's upload into
`attachments`, signed URL tokens used for another object, expired or tampered, malformed
bodies and every method on every route.

Every answer must be Storage's error (`{"statusCode", "error", "message"}`), a 4xx, never a
5xx or a leak, and nothing may be written where it must not be: the database and the data
directory are compared after each case (`Watch`, from tests/test_hostile_local.py). The last
test prints the case counts of the three tests/test_hostile_local*.py files.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt
import pytest

from fnkit.devenv import DEV_ANON_KEY, DEV_JWT_SECRET, DEV_SERVICE_ROLE_KEY
from tests.fixtures.server import SEED_USERS, Served
from tests.test_hostile_local import (
    ALL_METHODS,
    CASES,
    Watch,
    assert_no_leak,
    forged_tokens,
    secrets,
    watch,
)
from tests.test_local_storage import storage_as, storage_url
from tests.test_local_storage_policies import attachment_path

__all__ = ["secrets", "watch"]  # the fixtures, imported for this module's tests
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SERVICE = {"Authorization": f"Bearer {DEV_SERVICE_ROLE_KEY}"}


def storage_refusal(
    response: httpx.Response | tuple[int, str], secrets: list[str], code: str = ""
) -> dict[str, Any]:
    """Storage's error shape, a 4xx (Storage sends 400 with the real status in the body)."""
    if isinstance(response, tuple):
        status, text = response
    else:
        assert_no_leak(response, secrets)
        status, text = response.status_code, response.text
    assert 400 <= status < 500, (status, text[:300])
    body: dict[str, Any] = json.loads(text)
    assert {"statusCode", "error", "message"} <= set(body), body
    assert 400 <= int(body["statusCode"]) < 500, body
    if code:
        assert body["code"] == code, body
    return body


def send_raw(
    served: Served,
    method: str,
    path: str,
    body: bytes = b"evil",
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """A request whose path goes byte for byte (httpx would normalize dot segments)."""
    url = urlsplit(storage_url(served.auth))
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.putrequest(method, url.path + path, skip_accept_encoding=True)
        for name, value in {**SERVICE, "Content-Type": "text/plain", **(headers or {})}.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.fixture
def bucket(served: Served) -> Iterator[str]:
    """A private bucket of at most 10 bytes a file, text and PNG only, with one object."""
    admin = storage_as(served, "service")
    name = f"hostile-{uuid.uuid4().hex[:10]}"
    admin.create_bucket(
        name, options={"file_size_limit": 10, "allowed_mime_types": ["text/plain", "image/png"]}
    )
    admin.from_(name).upload("a.txt", b"hello", {"content-type": "text/plain"})
    yield name
    admin.empty_bucket(name)
    admin.delete_bucket(name)


@pytest.fixture
def storage(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=storage_url(served.auth), timeout=30) as client:
        yield client


def _routes(bucket: str) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of every route that needs a token."""
    key = f"{bucket}/a.txt"
    return [
        ("POST", "/bucket", {"name": f"x-{uuid.uuid4().hex[:6]}"}),
        ("GET", "/bucket", None),
        ("GET", f"/bucket/{bucket}", None),
        ("PUT", f"/bucket/{bucket}", {"public": True}),
        ("DELETE", f"/bucket/{bucket}", None),
        ("POST", f"/bucket/{bucket}/empty", None),
        ("POST", "/object/move", {"bucketId": bucket, "sourceKey": "a.txt", "destinationKey": "b"}),
        ("POST", "/object/copy", {"bucketId": bucket, "sourceKey": "a.txt", "destinationKey": "b"}),
        ("POST", f"/object/list/{bucket}", {"prefix": ""}),
        ("POST", f"/object/list-v2/{bucket}", {}),
        ("POST", f"/object/sign/{key}", {"expiresIn": 60}),
        ("POST", f"/object/sign/{bucket}", {"expiresIn": 60, "paths": ["a.txt"]}),
        ("POST", f"/object/upload/sign/{bucket}/new.txt", None),
        ("GET", f"/object/info/authenticated/{key}", None),
        ("GET", f"/object/authenticated/{key}", None),
        ("POST", f"/object/{bucket}/new.txt", None),
        ("PUT", f"/object/{key}", None),
        ("DELETE", f"/object/{key}", None),
        ("DELETE", f"/object/{bucket}", {"prefixes": ["a.txt"]}),
    ]


def test_forged_and_broken_tokens_on_every_authenticated_route(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    claims = {"sub": SEED_USERS["owner"], "role": "service_role", "iss": served.issuer,
              "aud": "authenticated", "exp": int(time.time()) + 600}  # fmt: skip
    tokens = forged_tokens(served, claims)
    with watch.unchanged("forged tokens on Storage"):
        for method, path, body in _routes(bucket):
            for name, token in [*tokens.items(), ("none", "")]:
                headers = {b"apikey": DEV_ANON_KEY.encode()}
                if token:
                    headers[b"Authorization"] = f"Bearer {token}".encode()
                if method in ("POST", "PUT") and body is None:
                    answer = storage.request(method, path, content=b"evil", headers=headers)
                else:
                    answer = storage.request(method, path, json=body, headers=headers)
                CASES["storage: tokens"] += 1
                refused = storage_refusal(answer, secrets)
                assert refused["statusCode"] == "403", (name, method, path, refused)
        # Routes that take no token read as anonymous: a private bucket is not there.
        for name, token in tokens.items():
            answer = storage.get(
                f"/object/{bucket}/a.txt", headers={b"Authorization": f"Bearer {token}".encode()}
            )
            CASES["storage: tokens"] += 1
            assert storage_refusal(answer, secrets)["message"] == "Bucket not found", name


def test_a_wrong_api_key_is_refused_by_the_gateway_or_changes_nothing(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    """Storage itself reads no `apikey`: the gateway refuses an `sb_` key it does not know;
    any other key leaves the bearer token to decide, so an anon caller still sees nothing."""
    with watch.unchanged("API keys on Storage"):
        for key in ("sb_publishable_" + "a" * 30, "sb_secret_" + "b" * 30, "sb_", "sb_x\u00e9"):
            for method, path, body in _routes(bucket):
                answer = storage.request(method, path, json=body, headers={b"apikey": key.encode()})
                CASES["storage: api keys"] += 1
                assert answer.status_code == 401, answer.text
                assert answer.json()["message"] == "Invalid API key"
        for key in ("not-a-key", DEV_ANON_KEY[:-1] + "x", ""):
            answer = storage.post(f"/object/{bucket}/b.txt", content=b"b", headers={"apikey": key})
            CASES["storage: api keys"] += 1
            assert storage_refusal(answer, secrets)["statusCode"] == "403"


TRAVERSALS = [
    "../escaped.txt", "a/../../escaped.txt", "%2e%2e/escaped.txt", "%2e%2e%2fescaped.txt",
    "%2E%2E%2F%2E%2E%2Fescaped.txt", "..%2f..%2fescaped.txt", "%252e%252e%252fescaped.txt",
    "/etc/escaped.txt", "%2Fetc%2Fescaped.txt", "//etc/escaped.txt", "a%00b.txt", "a%00/../x",
    "..%00/escaped.txt", "a%5C..%5C..%5Cescaped.txt", "a\\..\\escaped.txt", "./escaped.txt",
    "a/./b.txt", ".", "..", "...", "a/..", "%C0%AE%C0%AE/escaped.txt", "%E2%80%AE.txt",
    "%EF%BC%8E%EF%BC%8E/escaped.txt", "%E2%88%95etc%E2%88%95escaped", "a" * 300,
    "/".join(["a" * 200] * 30), "a/" * 2000 + "b", "%FF%FE.txt", "a%0Ab.txt", "a%0D%0Ab.txt",
    "~/.ssh/authorized_keys", "a//b.txt", "a/b/", "#staging/x", "%23staging/x", "a#b",
    "a?b", "a%3Fb", "CON", "a:b", "a%09b",
]  # fmt: skip
OBJECT_ROUTES = [
    ("POST", "/object/{bucket}/{key}"), ("PUT", "/object/{bucket}/{key}"),
    ("GET", "/object/{bucket}/{key}"), ("GET", "/object/authenticated/{bucket}/{key}"),
    ("GET", "/object/info/{bucket}/{key}"), ("DELETE", "/object/{bucket}/{key}"),
    ("POST", "/object/sign/{bucket}/{key}"), ("POST", "/object/upload/sign/{bucket}/{key}"),
    ("GET", "/object/public/{bucket}/{key}"),
]  # fmt: skip


def test_object_keys_never_leave_their_bucket(
    served: Served, bucket: str, watch: Watch, secrets: list[str], db_admin: Any
) -> None:
    """Every hostile key on every object route, as the service role (past every policy): a
    refusal, or a key stored inside the bucket's own folder and nowhere else."""
    assert served.auth.config is not None
    data = Path(served.auth.config.data_dir)
    root = (data / "storage" / bucket).resolve()
    for key in TRAVERSALS:
        files_before = watch.files()
        for method, template in OBJECT_ROUTES:
            path = template.format(bucket=bucket, key=key)
            body = json.dumps({"expiresIn": 60}).encode() if "sign/" in path else b"evil"
            content_type = "application/json" if "sign/" in path else "text/plain"
            status, text = send_raw(served, method, path, body, {"Content-Type": content_type})
            CASES["storage: object keys"] += 1
            assert status < 500, (method, path, text[:300])
            if status >= 400:
                storage_refusal((status, text), secrets)
                assert not any(s in text for s in secrets), text
        new = set(watch.files()) - set(files_before)
        for name in new:
            assert (data / name).resolve().is_relative_to(root), (key, name)
    stored = {name for (name,) in db_admin.execute(
        "select name from storage.objects where bucket_id = %s", (bucket,)
    )}  # fmt: skip
    for name in stored:
        assert ".." not in name.split("/") and "\x00" not in name and "\\" not in name, name
        assert not name.startswith("/"), name

    # Move and copy: a destination that tries to leave is refused, the source stays. Watched
    # cheaply (each case alone): the objects' rows, the Storage folder, and the folders above.
    def state() -> tuple[Any, set[Path]]:
        rows = db_admin.execute(
            "select md5(string_agg(t::text, '|' order by t::text)) from storage.objects t"
        ).fetchone()
        above = {p for folder in (data, data.parent) for p in folder.iterdir() if p.is_file()}
        return rows, {p for p in (data / "storage").rglob("*") if p.is_file()} | above

    with httpx.Client(base_url=storage_url(served.auth), headers=SERVICE, timeout=30) as client:
        for key in TRAVERSALS:
            for route in ("/object/move", "/object/copy"):
                for field in ("destinationKey", "sourceKey"):
                    fields = {"bucketId": bucket, "sourceKey": "a.txt", "destinationKey": "z.txt"}
                    fields[field] = key
                    before = state()
                    answer = client.post(route, json=fields)
                    CASES["storage: object keys"] += 1
                    if answer.status_code < 400:  # a strange but valid key, kept inside
                        assert field == "destinationKey", (route, field, key)
                        if route == "/object/move":  # put it back
                            back = {"bucketId": bucket, "sourceKey": key, "destinationKey": "a.txt"}
                            assert client.post(route, json=back).status_code == 200
                        else:
                            client.request("DELETE", f"/object/{bucket}", json={"prefixes": [key]})
                        continue
                    storage_refusal(answer, secrets)
                    assert state() == before, f"{route} {field}={key[:40]} wrote something"
            answer = client.post(f"/object/list/{bucket}", json={"prefix": key})
            CASES["storage: object keys"] += 1
            assert answer.status_code == 200 or storage_refusal(answer, secrets)
    assert (data / "storage" / bucket / "a.txt").is_dir()


def test_uploads_over_the_limit_or_of_a_refused_type_write_nothing(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    cases: list[tuple[bytes | Iterator[bytes], dict[str, str]]] = [
        (b"x" * 11, {"Content-Type": "text/plain"}),
        (b"x" * 100_000, {"Content-Type": "text/plain"}),
        (iter([b"x" * 6, b"x" * 6]), {"Content-Type": "text/plain"}),  # chunked, no length
        (b"x", {"Content-Type": "text/html"}),
        (b"x", {"Content-Type": "image/svg+xml"}),
        (b"x", {"Content-Type": "text/plain/../html"}),
        (b"x", {"Content-Type": "text"}),
        (b"x", {"Content-Type": "/plain"}),
        (b"x", {"Content-Type": "text/plain\u0000"}),
        (b"x", {"Content-Type": "image/*"}),
        (b"x", {"Content-Type": "application/octet-stream"}),
        (b"x", {"Content-Type": "text/plain, text/html"}),
        (b"x", {"Content-Type": "x" * 5000}),
        (b"x", {}),
    ]
    multipart = [
        ({"file": ("a.txt", b"x" * 11, "text/plain")}, {}),
        ({"file": ("a.html", b"<x>", "text/html")}, {}),
        ({"file": ("a.txt", b"x", "text/plain")}, {"contentType": "text/html"}),
        ({"file": ("a.txt", b"x", "text/plain")}, {"metadata": "{" * 3_000_000}),
    ]
    with watch.unchanged("uploads over the limits"):
        for key in ("big.txt", "a.txt"):
            for method in ("POST", "PUT"):
                for content, headers in cases:
                    if isinstance(content, Iterator):
                        content = iter([b"x" * 6, b"x" * 6])
                    try:
                        answer = storage.request(
                            method, f"/object/{bucket}/{key}", content=content,
                            headers={**SERVICE, **headers, "x-upsert": "true"},
                        )  # fmt: skip
                    except (httpx.LocalProtocolError, UnicodeEncodeError):
                        CASES["storage: limits"] += 1  # the client cannot even send it
                        continue
                    CASES["storage: limits"] += 1
                    refused = storage_refusal(answer, secrets)
                    assert refused["statusCode"] in ("400", "413", "415"), refused
                for files, fields in multipart:
                    answer = storage.request(
                        method, f"/object/{bucket}/{key}", files=files, data=fields,
                        headers={**SERVICE, "x-upsert": "true"},
                    )  # fmt: skip
                    CASES["storage: limits"] += 1
                    refused = storage_refusal(answer, secrets)
                    assert refused["statusCode"] in ("400", "413", "415"), refused
    assert storage_as(served, "service").from_(bucket).download("a.txt") == b"hello"


def test_a_viewer_cannot_upload_into_attachments(
    served: Served, db_admin: Any, task: str, storage: httpx.Client, watch: Watch,
    secrets: list[str],
) -> None:  # fmt: skip
    path = attachment_path(db_admin, task, SEED_USERS["viewer"])
    viewer = {"Authorization": f"Bearer {served.es256(SEED_USERS['viewer'])}"}
    outsider = {"Authorization": f"Bearer {served.es256(SEED_USERS['outsider'])}"}
    with watch.unchanged("a viewer's upload"):
        for who in (viewer, outsider):
            for method, url in (("POST", f"/object/attachments/{path}"),
                                ("PUT", f"/object/attachments/{path}"),
                                ("POST", f"/object/upload/sign/attachments/{path}")):  # fmt: skip
                answer = storage.request(method, url, content=b"hello",
                                         headers={**who, "Content-Type": "text/plain"})  # fmt: skip
                CASES["storage: policies"] += 1
                assert storage_refusal(answer, secrets)["statusCode"] == "403", answer.text
            answer = storage.post(
                "/object/copy",
                json={"bucketId": "attachments", "sourceKey": path, "destinationKey": path + "x"},
                headers=who,
            )
            CASES["storage: policies"] += 1
            storage_refusal(answer, secrets)


def test_signed_url_tokens_bind_one_object_one_action_and_expire(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    admin = storage_as(served, "service").from_(bucket)
    admin.upload("b.txt", b"other", {"content-type": "text/plain"})
    signed = storage.post(f"/object/sign/{bucket}/a.txt", json={"expiresIn": 60}, headers=SERVICE)
    token = signed.json()["signedURL"].split("token=")[1]
    upload = storage.post(f"/object/upload/sign/{bucket}/new.txt", headers=SERVICE).json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    header, payload, signature = token.split(".")
    other = json.dumps({**claims, "url": f"{bucket}/b.txt"}).encode()
    import base64

    tampered_payload = base64.urlsafe_b64encode(other).rstrip(b"=").decode()
    forged = {
        "another object": (f"/object/sign/{bucket}/b.txt", token),
        "another bucket": ("/object/sign/attachments/a.txt", token),
        "a prefix of the key": (f"/object/sign/{bucket}/a.tx", token),
        "tampered url": (f"/object/sign/{bucket}/b.txt", f"{header}.{tampered_payload}.{signature}"),
        "expired": (f"/object/sign/{bucket}/a.txt", jwt.encode(
            {**claims, "iat": 1, "exp": 2}, DEV_JWT_SECRET, "HS256")),
        "another secret": (f"/object/sign/{bucket}/a.txt", jwt.encode(claims, "z" * 40, "HS256")),
        "alg none": (f"/object/sign/{bucket}/a.txt", f"{header[:0]}eyJhbGciOiJub25lIn0.{payload}."),
        "an upload token to download": (f"/object/sign/{bucket}/new.txt", upload),
        "empty": (f"/object/sign/{bucket}/a.txt", ""),
        "junk": (f"/object/sign/{bucket}/a.txt", "x" * 5000),
    }  # fmt: skip
    with watch.unchanged("signed URLs"):
        for name, (path, value) in forged.items():
            for method in ("GET", "HEAD"):
                answer = storage.request(method, path, params={"token": value})
                CASES["storage: signed URLs"] += 1
                assert answer.status_code == 400, (name, answer.status_code)
                if method == "GET":
                    storage_refusal(answer, secrets)
        for name, value in {"a download token": token, "another key's upload token": upload,
                            "expired": jwt.encode({**jwt.decode(upload, options={
                                "verify_signature": False}), "exp": 2}, DEV_JWT_SECRET, "HS256"),
                            }.items():  # fmt: skip
            answer = storage.put(f"/object/upload/sign/{bucket}/elsewhere.txt",
                                 params={"token": value}, content=b"x",
                                 headers={"Content-Type": "text/plain"})  # fmt: skip
            CASES["storage: signed URLs"] += 1
            storage_refusal(answer, secrets)
        # The right token, over the bucket's limits: still refused.
        answer = storage.put(f"/object/upload/sign/{bucket}/new.txt", params={"token": upload},
                             content=b"x" * 11, headers={"Content-Type": "text/plain"})  # fmt: skip
        CASES["storage: signed URLs"] += 1
        assert storage_refusal(answer, secrets)["statusCode"] == "413"
    assert storage.get(f"/object/sign/{bucket}/a.txt", params={"token": token}).content == b"hello"


MALFORMED = [b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b'{"prefix": "\xff"}', b"[" * 100_000,
             b'{"prefix": "\\ud800"}', b'{"prefix": "a\\u0000b"}', b'{"expiresIn": 1e400}',
             b'{"paths": ["\\u0000"], "expiresIn": 60}', b'{"prefixes": ["\\u0000"]}',
             b'{"name": "\\u0000"}', b'{"cursor": "bDphCm86eA==", "sortBy": {"column": "x"}}',
             b'{"cursor": "YTpub3QgYSB0aW1l", "sortBy": {"column": "created_at"}}']  # fmt: skip


def test_malformed_bodies_and_every_method_on_every_route(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    with watch.unchanged("malformed Storage bodies"):
        for method, path, body in _routes(bucket):
            if body is None:
                continue
            for raw in MALFORMED:
                answer = storage.request(method, path, content=raw,
                                         headers={**SERVICE, "Content-Type": "application/json"})  # fmt: skip
                CASES["storage: malformed bodies"] += 1
                if answer.status_code >= 400:
                    storage_refusal(answer, secrets)
                else:
                    assert (method in ("GET", "POST") and "list" in path) or "sign" in path, (
                        method, path, raw[:40], answer.text[:200]
                    )  # fmt: skip
    paths = {path for _, path, _ in _routes(bucket)} | {"/", "/nowhere", "/object", "/bucket/%00"}
    # As the anon key, which no policy lets write to this private bucket: every method on
    # every path is a read, a refusal or Storage's 404 for a route it does not have.
    with watch.unchanged("methods on Storage"):
        for path in sorted(paths):
            for method in [*ALL_METHODS, "TRACE", "PROPFIND"]:
                answer = storage.request(
                    method,
                    path,
                    content=b"{}",
                    headers={
                        "Authorization": f"Bearer {DEV_ANON_KEY}",
                        "Content-Type": "application/json",
                    },
                )
                CASES["storage: methods"] += 1
                assert_no_leak(answer, secrets)
                if answer.status_code >= 400 and method != "HEAD":
                    storage_refusal(answer, secrets)


BUCKET_NAMES = ["..", ".", "../x", "a/b", "#staging", "%2e%2e", "a\\b", "a\u0000b", " a", "a" * 101,
                "\u202eab", "\uff41", "", "attachments/../x"]  # fmt: skip


def test_hostile_bucket_names_and_ids_are_refused(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    """A bucket's id is a folder on disk: neither it nor the name may be a path trick."""
    with watch.unchanged("bucket names"):
        for name in BUCKET_NAMES:
            for body in ({"name": name}, {"name": "ok-name", "id": name}):
                if name == "" and "id" in body:
                    continue  # an empty id means "use the name", which is fine
                answer = storage.post("/bucket", json=body, headers=SERVICE)
                CASES["storage: bucket names"] += 1
                storage_refusal(answer, secrets)
            for method, template in OBJECT_ROUTES[:2]:
                path = template.format(bucket=quote(name, safe=""), key="x.txt")
                status, text = send_raw(served, method, path)
                CASES["storage: bucket names"] += 1
                storage_refusal((status, text), secrets)


def test_oversized_json_wrong_types_and_unknown_fields_on_storage(
    served: Served, bucket: str, storage: httpx.Client, watch: Watch, secrets: list[str]
) -> None:
    big = json.dumps({"prefix": "a" * (1 << 20)}).encode()
    with watch.unchanged("oversized and odd Storage bodies"):
        for method, path, body in _routes(bucket):
            if body is None:
                continue
            answer = storage.request(
                method, path, content=big, headers={**SERVICE, "Content-Type": "application/json"}
            )
            CASES["storage: oversized bodies"] += 1
            assert storage_refusal(answer, secrets)["statusCode"] == "413", (path, answer.text)
            raw = json.dumps(body).encode()
            for content_type in ("text/plain", "application/x-www-form-urlencoded", "",
                                 "multipart/form-data; boundary=x", "application/xml"):  # fmt: skip
                answer = storage.request(method, path, content=raw,
                                         headers={**SERVICE, "Content-Type": content_type})  # fmt: skip
                CASES["storage: content types"] += 1
                if method != "GET":  # a GET's body is never read
                    assert storage_refusal(answer, secrets)["statusCode"] in ("400", "415")
    # Unknown fields are ignored, never obeyed: no owner, no other bucket, no other id.
    name = f"u-{uuid.uuid4().hex[:8]}"
    extra = {"name": name, "owner": SEED_USERS["outsider"], "owner_id": "x", "type": None,
             "created_at": "1970-01-01", "__proto__": {"public": True}}  # fmt: skip
    answer = storage.post("/bucket", json=extra, headers=SERVICE)
    CASES["storage: unknown fields"] += 1
    assert answer.status_code == 200, answer.text
    made = storage.get(f"/bucket/{name}", headers=SERVICE).json()
    assert made["owner"] == "" and made["public"] is False, made
    storage.delete(f"/bucket/{name}", headers=SERVICE)
    signed = storage.post(f"/object/sign/{bucket}/a.txt", headers=SERVICE,
                          json={"expiresIn": 60, "url": f"{bucket}/b.txt", "scope": "upload"})  # fmt: skip
    CASES["storage: unknown fields"] += 1
    token = signed.json()["signedURL"].split("token=")[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["url"] == f"{bucket}/a.txt" and claims["scope"] == "download", claims


def test_zz_print_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """How many hand-written cases each category tried, Auth and Storage (for the note)."""
    lines = [f"  {category}: {n}" for category, n in sorted(CASES.items())]
    lines.append(f"  total: {sum(CASES.values())}")
    with capsys.disabled():
        print("\nhostile local services cases per category:\n" + "\n".join(lines))
