"""Member removal racing with that member's writes: no write lands after the removal commits.

Both orders of the race are forced with two real transactions impersonating the callers.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from shared.db import Transaction
from shared.settings import Settings
from tests.fixtures.server import SEED_USERS

OWNER, MEMBER = SEED_USERS["owner"], SEED_USERS["member"]


def _as(database_url: str, sub: str, aal: str = "aal2") -> Transaction:
    settings = Settings(
        supabase_url="http://127.0.0.1:54321",
        database_url=database_url,
        upstash_url="http://127.0.0.1:1",
        upstash_token="unused",
    )
    claims = {"sub": sub, "role": "authenticated", "aud": "authenticated", "aal": aal}
    return Transaction(settings, claims, "authenticated", "POST", "/", {})


@pytest.fixture
def workspace(db_admin) -> str:
    ws = str(uuid.uuid4())
    db_admin.execute(
        "insert into public.workspaces (id, name, slug, created_by) values (%s, 'Race', %s, %s)",
        (ws, f"race-{ws[:8]}", OWNER),
    )
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'owner')"
        " on conflict do nothing",
        (ws, OWNER),
    )
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'member')",
        (ws, MEMBER),
    )
    return ws


def _in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _remove_member(database_url: str, ws: str) -> int:
    owner = _as(database_url, OWNER)
    try:
        return owner.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (ws, MEMBER),
        )
    finally:
        owner.finish(commit=True)


def test_a_write_in_flight_holds_the_removal_until_it_commits(
    database_url: str, db_admin, workspace: str
) -> None:
    member = _as(database_url, MEMBER)
    member.execute(
        "insert into public.projects (workspace_id, name) values (%s, 'in flight')", (workspace,)
    )
    removal, outcome = _in_thread(lambda: _remove_member(database_url, workspace))
    time.sleep(0.5)
    assert removal.is_alive(), "the removal must wait for the member's write"
    member.finish(commit=True)
    removal.join(10)
    assert outcome == {"value": 1}
    assert (
        db_admin.execute(
            "select count(*) from public.projects where workspace_id = %s", (workspace,)
        ).fetchone()[0]
        == 1
    )


def test_a_write_after_a_removal_fails(database_url: str, db_admin, workspace: str) -> None:
    owner = _as(database_url, OWNER)
    assert (
        owner.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (workspace, MEMBER),
        )
        == 1
    )

    def write() -> int:
        member = _as(database_url, MEMBER)
        try:
            return member.execute(
                "insert into public.projects (workspace_id, name) values (%s, 'late')", (workspace,)
            )
        finally:
            member.finish(commit=False)

    writer, outcome = _in_thread(write)
    time.sleep(0.5)
    assert writer.is_alive(), "the write must wait for the removal to finish"
    owner.finish(commit=True)
    writer.join(10)
    assert isinstance(outcome.get("error"), psycopg.errors.InsufficientPrivilege), outcome
    assert (
        db_admin.execute(
            "select count(*) from public.projects where workspace_id = %s", (workspace,)
        ).fetchone()[0]
        == 0
    )


def test_a_demotion_to_viewer_also_stops_writes(
    database_url: str, db_admin, workspace: str
) -> None:
    owner = _as(database_url, OWNER)
    owner.execute(
        "update public.workspace_members set role = 'viewer' where workspace_id = %s and user_id = %s",
        (workspace, MEMBER),
    )

    def write() -> int:
        member = _as(database_url, MEMBER)
        try:
            return member.execute(
                "insert into public.projects (workspace_id, name) values (%s, 'late')", (workspace,)
            )
        finally:
            member.finish(commit=False)

    writer, outcome = _in_thread(write)
    time.sleep(0.5)
    assert writer.is_alive()
    owner.finish(commit=True)
    writer.join(10)
    assert isinstance(outcome.get("error"), psycopg.errors.InsufficientPrivilege), outcome


def test_deleting_a_workspace_still_cascades(database_url: str, db_admin, workspace: str) -> None:
    member = _as(database_url, MEMBER)
    member.execute(
        "insert into public.projects (workspace_id, name) values (%s, 'doomed')", (workspace,)
    )
    member.finish(commit=True)
    owner = _as(database_url, OWNER)
    assert owner.execute("delete from public.workspaces where id = %s", (workspace,)) == 1
    owner.finish(commit=True)
    assert (
        db_admin.execute(
            "select count(*) from public.projects where workspace_id = %s", (workspace,)
        ).fetchone()[0]
        == 0
    )
