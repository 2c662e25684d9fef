"""`POST /docs/sign` of the dev server: the headers Supabase would send, for /docs to try
machine routes. What it signs is accepted by the served hooks function (real HTTP, the same
bytes); what it is sent wrong is a clear 4xx; it answers loopback clients only."""

from __future__ import annotations

import json

import httpx
import pytest

from fnkit.devenv import DEV_DB_WEBHOOK_SECRET
from fnkit.devserver import create_app
from tests.fixtures.server import ROOT, SEED_USERS, Served


def sign(served: Served, kind: str, body: str) -> httpx.Response:
    return httpx.post(f"{served.url}/docs/sign", json={"kind": kind, "body": body}, timeout=30)


def test_a_signed_hook_call_is_accepted_once(served: Served) -> None:
    owner = SEED_USERS["owner"]
    text = json.dumps({"user_id": owner, "claims": {"sub": owner, "note": "é ✓"}})
    response = sign(served, "standard-webhooks", text)
    assert response.status_code == 200, response.text
    headers = response.json()["headers"]
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    with served.client() as client:
        call = {"headers": {**headers, "Content-Type": "application/json"}, "content": text}
        first = client.post("/hooks/custom-access-token", **call)
        assert first.status_code == 200, first.text
        assert first.json()["claims"]["note"] == "é ✓"
        assert "memberships" in first.json()["claims"]
        replay = client.post("/hooks/custom-access-token", **call)
        assert replay.status_code == 401  # the webhook-id is spent
        tampered = client.post(
            "/hooks/custom-access-token",
            headers=call["headers"] | {"webhook-id": "msg_other"},
            content=text,
        )
        assert tampered.status_code == 401


def test_the_database_webhook_gets_its_bearer_secret(served: Served) -> None:
    response = sign(served, "database-webhook", "")
    assert response.json() == {"headers": {"Authorization": f"Bearer {DEV_DB_WEBHOOK_SECRET}"}}
    with served.client() as client:
        delivered = client.post(
            "/hooks/task-assigned",
            json={"type": "DELETE", "table": "tasks", "schema": "public"},
            headers=response.json()["headers"],
        )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["data"] == {
        "recorded": False,
        "reason": "no assignee",
        "notification_id": None,
    }


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"kind": "jwt", "body": "{}"}', 422),
        (b'{"kind": "standard-webhooks", "body": {"a": 1}}', 422),
        (b'{"kind": "standard-webhooks", "body": "\\ud800"}', 422),
    ],
    ids=["not-json", "not-an-object", "unknown-kind", "body-not-text", "lone-surrogate"],
)
def test_bad_requests_are_clear_4xx(served: Served, content: bytes, status: int) -> None:
    response = httpx.post(
        f"{served.url}/docs/sign",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_only_loopback_clients_get_a_signature(served: Served) -> None:
    app = create_app([ROOT / "functions"])
    client = app.test_client()
    body = {"kind": "standard-webhooks", "body": "{}"}
    remote = client.post("/docs/sign", json=body, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 403 and "loopback" in remote.json["error"]
    local = client.post("/docs/sign", json=body, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200 and "webhook-signature" in local.json["headers"]
