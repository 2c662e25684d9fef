"""Scheduled routes: who may run them, one run at a time, the dev runner and the commands."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from typing import Any

import httpx
import jwt
import pytest

from fnkit.cli import main as fnkit_main
from fnkit.devenv import DEV_ANON_KEY, DEV_SECRET_KEY, DEV_SERVICE_ROLE_KEY
from fnkit.schedules import Job, Runner, jobs_of
from shared import App
from shared.schedule import Schedule
from tests.envelope import assert_error
from tests.fixtures.server import (
    ROOT,
    SCHEDULER_ACCOUNT,
    SCHEDULER_AUDIENCE,
    SEED_USERS,
    GoogleKey,
    Served,
)

EXPIRE = "/housekeeping/idempotency-keys/expire"


@pytest.fixture(scope="module")
def google(served: Served) -> GoogleKey:
    return served.auth.add_google_key("google-1")


def oidc(key: GoogleKey, **overrides: Any) -> str:
    """An ID token as Cloud Scheduler sends it (Google-signed RS256)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": SCHEDULER_AUDIENCE,
        "email": SCHEDULER_ACCOUNT,
        "email_verified": True,
        "sub": "104839201928374650192",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})


def post(served: Served, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with served.client(**headers) as client:
        return client.post(path)


def test_cloud_scheduler_oidc_token_runs_the_route(served: Served, google: GoogleKey) -> None:
    response = post(served, EXPIRE, oidc(google))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["ran"] is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aud": "https://europe-west1-acme-prod.cloudfunctions.net/other"}, "not for this"),
        ({"email": "intruder@acme-prod.iam.gserviceaccount.com"}, "service account"),
        ({"email_verified": False}, "service account"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"iss": "https://evil.example.com"}, "not valid"),
    ],
)
def test_a_bad_oidc_token_is_401(
    served: Served, google: GoogleKey, overrides: dict[str, Any], message: str
) -> None:
    response = post(served, EXPIRE, oidc(google, **overrides))
    assert_error(response, 401, "UNAUTHENTICATED")
    assert message in response.json()["error"]["message"]


def test_a_token_signed_by_an_unknown_google_key_is_401(served: Served, google: GoogleKey) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = GoogleKey("not-published", rsa.generate_private_key(65537, 2048))
    response = post(served, EXPIRE, oidc(stranger))
    assert_error(response, 401, "UNAUTHENTICATED")
    assert "unknown" in response.json()["error"]["message"]
    # A published kid signed by another key fails the signature check.
    forged = GoogleKey(google.kid, stranger.private)
    assert_error(post(served, EXPIRE, oidc(forged)), 401, "UNAUTHENTICATED")


def test_google_keys_are_cached_not_fetched_per_call(served: Served, google: GoogleKey) -> None:
    assert post(served, EXPIRE, oidc(google)).status_code == 200
    fetched = served.auth.google_fetches
    for _ in range(3):
        assert post(served, EXPIRE, oidc(google)).status_code == 200
    assert served.auth.google_fetches == fetched


@pytest.mark.parametrize("who", ["none", "anon key", "owner", "user service_role jwt"])
def test_anything_but_the_scheduler_is_401(served: Served, who: str) -> None:
    token = {
        "none": None,
        "anon key": DEV_ANON_KEY,
        "owner": served.token(SEED_USERS["owner"], email="owner@example.com"),
        "user service_role jwt": served.token(SEED_USERS["owner"], role="service_role"),
    }[who]
    assert_error(post(served, EXPIRE, token), 401, "UNAUTHENTICATED")


def test_the_service_role_key_runs_it_and_expired_keys_go(served: Served, db_admin: Any) -> None:
    db_admin.execute(
        "insert into private.idempotency_keys (caller, function_name, route, key, fingerprint,"
        " expires_at) select 'sched-test', 'f', 'r', 'k' || n, 'x',"
        " case when n <= 3 then now() - interval '1 hour' else now() + interval '1 hour' end"
        " from generate_series(1, 5) n"
    )
    response = post(served, EXPIRE, DEV_SERVICE_ROLE_KEY)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["ran"] is True and data["expired"] >= 3 and data["batches"] >= 1
    left = db_admin.execute(
        "select count(*) from private.idempotency_keys where caller = 'sched-test'"
    ).fetchone()
    assert left == (2,)


def test_trim_removes_old_broadcasts_and_delivered_outbox_rows(
    served: Served, db_admin: Any
) -> None:
    db_admin.execute(
        "insert into realtime.messages (topic, extension, inserted_at) values"
        " ('trim-test', 'broadcast', now() - interval '10 days'),"
        " ('trim-test', 'broadcast', now())"
    )
    db_admin.execute(
        "insert into private.outbox (message_id, topic, payload, sink, target, max_attempts,"
        " status, created_at) values"
        " (gen_random_uuid(), 'trim.test', '{}', 'publish', 'trim.test', 3, 'delivered',"
        "  now() - interval '30 days'),"
        " (gen_random_uuid(), 'trim.test', '{}', 'publish', 'trim.test', 3, 'delivered', now())"
    )
    response = post(served, "/housekeeping/history/trim", DEV_SERVICE_ROLE_KEY)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["realtime_messages"] >= 1
    assert db_admin.execute(
        "select count(*) from realtime.messages where topic = 'trim-test'"
    ).fetchone() == (1,)
    assert db_admin.execute(
        "select count(*) from private.outbox where topic = 'trim.test'"
    ).fetchone() == (1,)


def test_overlapping_runs_do_not_both_work(served: Served) -> None:
    clockwork = sys.modules["fnkit_functions_clockwork"]
    clockwork.entered.clear()
    clockwork.release.clear()
    first: dict[str, Any] = {}

    def run_first() -> None:
        first["response"] = post(served, "/clockwork/slow", DEV_SERVICE_ROLE_KEY)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert clockwork.entered.wait(30)
        second = post(served, "/clockwork/slow", DEV_SERVICE_ROLE_KEY)
        assert second.status_code == 200, second.text
        assert second.json()["data"] == {"ran": False, "reason": "another run holds the lock"}
    finally:
        clockwork.release.set()
        thread.join(60)
    assert first["response"].json()["data"] == {"ran": True, "released": True}
    # The lock went with the first run's transaction: the next run works.
    clockwork.entered.clear()
    again = post(served, "/clockwork/slow", DEV_SERVICE_ROLE_KEY)
    assert again.json()["data"]["ran"] is True


def test_declarations_are_checked_at_import(function_env: dict[str, str]) -> None:
    app = App("declared")
    with pytest.raises(ValueError, match="bad cron"):
        app.post("/x", schedule="every tuesday")(lambda request: {})
    with pytest.raises(ValueError, match="time zone"):
        app.post("/x", schedule=Schedule("0 3 * * *", "Mars/Olympus"))(lambda request: {})
    with pytest.raises(ValueError, match="auth is the scheduler"):
        app.post("/x", schedule="0 3 * * *", auth="user")(lambda request: {})


def test_a_schedule_honours_its_time_zone() -> None:
    paris = Schedule("0 3 * * *", "Europe/Paris")
    after = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert paris.next_after(after).astimezone(dt.UTC) == dt.datetime(
        2026, 7, 2, 1, 0, tzinfo=dt.UTC
    )
    utc = Schedule("*/30 * * * *")
    assert utc.next_after(after) == dt.datetime(2026, 7, 1, 12, 30, tzinfo=dt.UTC)


def test_openapi_documents_the_schedule_and_the_scheduler(served: Served) -> None:
    with served.client() as client:
        document = client.get("/attachments/openapi.json").json()
    purge = document["paths"]["/attachments/purge"]["post"]
    assert purge["x-schedule"] == {"cron": "*/30 * * * *", "timezone": "UTC"}
    assert purge["security"] == [{"scheduler": []}]
    assert document["components"]["securitySchemes"]["scheduler"]["scheme"] == "bearer"


@pytest.mark.parametrize("key", [DEV_SECRET_KEY, DEV_SERVICE_ROLE_KEY], ids=["secret", "legacy"])
def test_the_dev_runner_runs_due_jobs_over_http_and_logs_them(
    served: Served, db_admin: Any, key: str
) -> None:
    """With the secret key (sent in `apikey`) or the legacy service role key (the bearer)."""
    # Files queued by other tests would make the purge call Storage, which is not faked here.
    db_admin.execute("delete from private.storage_orphans")
    modules = [sys.modules[f"fnkit_functions_{name}"] for name in ("housekeeping", "attachments")]
    jobs = [job for module in modules for job in jobs_of(module.__name__[16:], module.app)]
    assert {job.name for job in jobs} == {
        "housekeeping/outbox/dispatch",
        "housekeeping/idempotency-keys/expire",
        "housekeeping/history/trim",
        "attachments/purge",
    }
    lines: list[str] = []
    start = dt.datetime(2026, 12, 1, 10, 5, tzinfo=dt.UTC)
    runner = Runner(served.url, key, jobs, start, log=lines.append)
    assert runner.run_due(start) == []  # nothing is due at the start
    ran = runner.run_due(dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC))
    assert sorted(job.name for job, _, _ in ran) == [
        "attachments/purge",
        "housekeeping/outbox/dispatch",
    ]
    assert all(status == 200 and body["data"]["ran"] for _, status, body in ran)
    assert len(lines) == 2 and all(" → 200 " in line for line in lines)
    hourly = runner.run_due(dt.datetime(2026, 12, 1, 11, 0, 30, tzinfo=dt.UTC))
    assert "housekeeping/idempotency-keys/expire" in {job.name for job, _, _ in hourly}


def test_schedule_list_and_run_commands(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--functions-dir", str(ROOT / "tests" / "functions")]
    assert fnkit_main(["schedule", "list", *extra]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_job = {row["job"]: row for row in rows}
    assert by_job["attachments/purge"]["cron"] == "*/30 * * * *"
    assert dt.datetime.fromisoformat(by_job["attachments/purge"]["next_run"]) > dt.datetime.now(
        dt.UTC
    )
    assert "clockwork/slow" in by_job
    assert fnkit_main(["schedule", "run", "housekeeping/history/trim", *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == 200 and out["data"]["ran"] is True
    assert fnkit_main(["schedule", "run", "nope/never", *extra]) == 1
    assert "no scheduled route 'nope/never'" in capsys.readouterr().err


def test_job_naming() -> None:
    job = Job("housekeeping", "POST", "/outbox/dispatch", Schedule("* * * * *"))
    assert (job.name, job.slug) == ("housekeeping/outbox/dispatch", "housekeeping-outbox-dispatch")
