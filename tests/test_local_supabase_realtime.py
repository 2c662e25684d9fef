"""Realtime from a developer's seat: `fnkit dev`, then examples/subscribe.py as a person runs it.

`fnkit dev` runs as a subprocess in a copy of the repository, on a database that decodes its
own WAL (as Supabase's does); the example signs in with the seed owner's password through the
local Auth and subscribes through the local Realtime on the same base URL; a task created
through the `tasks` function reaches it both ways (Postgres Changes and the workspace's
private broadcast); an assignment made through the function reaches the assignee's
subscription to `notifications` through the database webhook and the `hooks` function. With no
server, the example says so in one line.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from realtime import RealtimeSubscribeStates
from supabase import acreate_client, create_client

from fnkit.devenv import DEV_PUBLISHABLE_KEY
from tests.devserver import ROOT, DevServer, running_dev

ACME = "a0000000-0000-4000-8000-000000000001"
ACME_PROJECT = "b0000000-0000-4000-8000-000000000001"
EXAMPLE = str(ROOT / "examples" / "subscribe.py")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, logical_url: str) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("local-realtime")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "functions", root / "functions")
    shutil.copytree(ROOT / "supabase", root / "supabase")
    with running_dev(root, logical_url) as server:
        yield server


class Lines:
    """A subprocess's stdout, read line by line up to a deadline (which only bounds a hang)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.seen: list[dict[str, Any]] = []

    def until(self, wanted: Any, deadline_s: float = 30) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        assert self.process.stdout is not None
        while time.monotonic() < end:
            if not self.selector.select(timeout=0.2):
                assert self.process.poll() is None, (self.seen, self.process.stderr)
                continue
            line = self.process.stdout.readline()
            if line:
                self.seen.append(json.loads(line))
                if wanted(self.seen[-1]):
                    return self.seen[-1]
        raise AssertionError(f"never printed: {self.seen}")


def test_the_example_prints_a_task_created_through_the_function(dev: DevServer) -> None:
    process = subprocess.Popen(
        [sys.executable, EXAMPLE, ACME, "--url", dev.url, "--anon-key", DEV_PUBLISHABLE_KEY,
         "--email", "member@example.com", "--password", "password123",
         "--max-events", "2", "--seconds", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = Lines(process)
        subscribed: set[str] = set()
        while len(subscribed) < 2:
            status = lines.until(lambda line: line.get("state") == "SUBSCRIBED")
            subscribed.add(status["channel"])
        supabase = create_client(dev.url, DEV_PUBLISHABLE_KEY)
        session = supabase.auth.sign_in_with_password(
            {"email": "member@example.com", "password": "password123"}
        ).session
        assert session is not None
        title = f"Seen live {uuid.uuid4().hex[:6]}"
        created = httpx.post(
            f"{dev.url}/functions/v1/tasks",
            json={"project_id": ACME_PROJECT, "title": title},
            headers={"Authorization": f"Bearer {session.access_token}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        # The two arrive in either order.
        kinds = {"postgres_changes", "broadcast"}
        lines.until(lambda _: kinds <= {line.get("via") for line in lines.seen})
        change = next(line for line in lines.seen if line.get("via") == "postgres_changes")
        broadcast = next(line for line in lines.seen if line.get("via") == "broadcast")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (change["type"], change["table"]) == ("INSERT", "public.tasks")
    assert change["record"]["title"] == title
    assert change["record"]["id"] == created.json()["data"]["id"]
    assert (broadcast["type"], broadcast["table"]) == ("INSERT", "public.tasks")
    assert broadcast["record"]["title"] == title


def test_the_example_says_in_one_line_when_nothing_answers() -> None:
    result = subprocess.run(
        [sys.executable, EXAMPLE, ACME, "--url", "http://127.0.0.1:9", "--anon-key",
         DEV_PUBLISHABLE_KEY, "--access-token", "x", "--seconds", "5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("nothing answers at http://127.0.0.1:9")
    assert "is `make dev`" in result.stderr


def test_an_assignment_made_through_the_function_reaches_the_assignees_notifications(
    dev: DevServer,
) -> None:
    """The README's path, all of it local: the owner assigns a task through the `tasks`
    function; the database webhook `make dev` delivers calls the `hooks` function, which
    records a notification; the assignee, subscribed to INSERTs on `notifications` with
    supabase-py, hears it, and only theirs (the SELECT policy decides)."""
    member_id = "33333333-3333-3333-3333-333333333333"

    async def scenario() -> list[dict[str, Any]]:
        supabase = await acreate_client(dev.url, DEV_PUBLISHABLE_KEY)
        await supabase.auth.sign_in_with_password(
            {"email": "member@example.com", "password": "password123"}
        )
        heard: list[dict[str, Any]] = []
        arrived = asyncio.Event()
        subscribed = asyncio.Event()

        def on_insert(payload: dict[str, Any]) -> None:
            heard.append(payload["data"]["record"])
            arrived.set()

        def on_state(state: Any, _error: Exception | None = None) -> None:
            if state == RealtimeSubscribeStates.SUBSCRIBED:
                subscribed.set()

        channel = supabase.channel("my-notifications")
        channel.on_postgres_changes(
            "INSERT", on_insert, schema="public", table="notifications",
            filter=f"user_id=eq.{member_id}",
        )  # fmt: skip
        await channel.subscribe(on_state)
        await asyncio.wait_for(subscribed.wait(), 30)

        owner = create_client(dev.url, DEV_PUBLISHABLE_KEY)
        session = owner.auth.sign_in_with_password(
            {"email": "owner@example.com", "password": "password123"}
        ).session
        assert session is not None
        bearer = {"Authorization": f"Bearer {session.access_token}"}
        async with httpx.AsyncClient(base_url=f"{dev.url}/functions/v1", timeout=30) as http:
            created = await http.post(
                "/tasks", json={"project_id": ACME_PROJECT, "title": "For Mia"}, headers=bearer
            )
            assert created.status_code == 201, created.text
            task = created.json()["data"]
            assigned = await http.patch(
                f"/tasks/{task['id']}",
                json={"assignee_id": member_id},
                headers={**bearer, "If-Match": f'"{task["version"]}"'},
            )
            assert assigned.status_code == 200, assigned.text
        await asyncio.wait_for(arrived.wait(), 60)  # a deadline only: delivery retries
        await supabase.remove_all_channels()
        return heard

    heard = asyncio.run(scenario())
    assert [(n["user_id"], n["kind"]) for n in heard] == [(member_id, "task_assigned")]
