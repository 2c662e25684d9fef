"""The round trip with the generated Python client (`fnkit client python`), run by
tests/test_clients.py in a subprocess with the generated package on its path, and checked
with it by `mypy --strict`: a typo or a wrong type here fails the test before it runs.

A new user signs up with the local Auth, then creates a workspace, a project and three tasks
(with an Idempotency-Key, sent twice), pages through the tasks with the cursor, gets a typed
422 (`loc`) and a typed 412 on a stale If-Match. Prints what it made, as JSON, for cleanup.
"""

from __future__ import annotations

import json
import os
import uuid

import httpx
from functions_client import AuthenticatedClient
from functions_client.api.projects import projects_create_project
from functions_client.api.tasks import tasks_create_task, tasks_list_tasks, tasks_patch_task
from functions_client.api.workspaces import workspaces_create_workspace
from functions_client.models import ErrorEnvelope, ProjectIn, TaskCreate, TaskPatch, WorkspaceIn
from functions_client.paging import FunctionError, pages, unwrap
from functions_client.types import Unset


def sign_up(supabase_url: str, api_key: str) -> str:
    """A new user's access token from the local Auth (GoTrue's /signup)."""
    email = f"client-{uuid.uuid4().hex[:12]}@example.com"
    answer = httpx.post(
        f"{supabase_url}/auth/v1/signup",
        json={"email": email, "password": "correct-horse-battery"},
        headers={"apikey": api_key},
        timeout=30,
    )
    answer.raise_for_status()
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


def main() -> None:
    supabase_url, api_key = os.environ["SUPABASE_URL"], os.environ["SUPABASE_KEY"]
    client = AuthenticatedClient(
        base_url=os.environ["FUNCTIONS_URL"],
        token=sign_up(supabase_url, api_key),
        headers={"apikey": api_key},
    )
    key = f"ws-{uuid.uuid4()}"
    workspace = unwrap(
        workspaces_create_workspace.sync_detailed(
            client=client, body=WorkspaceIn(name="Client round trip"), idempotency_key=key
        )
    ).data
    project = unwrap(
        projects_create_project.sync_detailed(
            client=client, body=ProjectIn(workspace_id=workspace.id, name="Typed")
        )
    ).data

    made = []
    for n in range(3):
        body = TaskCreate(project_id=project.id, title=f"task {n}", priority=n)
        task_key = f"task-{n}-{uuid.uuid4()}"
        first = tasks_create_task.sync_detailed(client=client, body=body, idempotency_key=task_key)
        again = tasks_create_task.sync_detailed(client=client, body=body, idempotency_key=task_key)
        assert unwrap(first).data.id == unwrap(again).data.id, "the key replays the first answer"
        assert again.headers.get("Idempotent-Replayed") == "true"
        made.append(unwrap(first).data.id)

    seen = []
    page_count = 0
    for page in pages(
        lambda cursor: tasks_list_tasks.sync_detailed(
            client=client, project_id=project.id, limit=2, cursor=cursor
        )
    ):
        page_count += 1
        seen += [task.id for task in page.data]
    assert seen == list(reversed(made)) and page_count == 2, (seen, made, page_count)

    invalid = tasks_create_task.sync_detailed(
        client=client, body=TaskCreate(project_id=project.id, title="")
    )
    assert invalid.status_code == 422 and isinstance(invalid.parsed, ErrorEnvelope)
    details = invalid.parsed.error.details
    assert not isinstance(details, Unset) and details[0].loc == ["body", "title"], details

    task_id = made[0]
    unwrap(
        tasks_patch_task.sync_detailed(
            task_id, client=client, body=TaskPatch(title="moved"), if_match='"1"'
        )
    )
    stale = tasks_patch_task.sync_detailed(
        task_id, client=client, body=TaskPatch(title="again"), if_match='"1"'
    )
    failure: FunctionError | None = None
    try:
        unwrap(stale)
    except FunctionError as error:
        failure = error
    assert failure is not None, "a stale If-Match was accepted"
    assert failure.status == 412 and failure.code == "PRECONDITION_FAILED", failure
    print(
        json.dumps(
            {
                "workspace": str(workspace.id),
                "tasks": [str(t) for t in made],
                "pages": page_count,
                "loc": details[0].loc,
                "stale": failure.status,
            }
        )
    )


if __name__ == "__main__":
    main()
