"""Typed clients from the OpenAPI documents, end to end (issue 25).

Each client is generated once per session by the command a user runs (`fnkit client python`,
`fnkit client typescript`), checked strictly (`mypy --strict` on the package and on the round
trip that uses it; `tsc --strict` on the generated files, the supabase-js example and the Node
round trip), then the round trip runs against the served functions and the local Auth: a new
user creates a workspace, a project and tasks with an Idempotency-Key, pages with the cursor,
and gets a typed 422 with `loc` and a typed 412 on a stale If-Match (tests/clients/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fnkit.devenv import DEV_PUBLISHABLE_KEY
from tests.fixtures.server import ROOT, Served

BIN = ROOT / ".venv" / "bin"
CLIENTS = ROOT / "tests" / "clients"
TOOLS = ROOT / "tools" / "clients-ts" / "node_modules"


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clients") / "python"
    printed = _run([str(BIN / "fnkit"), "client", "python", "--out", str(out)], ROOT)
    assert "functions_client" in printed
    return out


@pytest.fixture(scope="session")
def typescript_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated files, the round trip beside them, compiled by tsc --strict to dist/."""
    out = tmp_path_factory.mktemp("clients") / "typescript"
    _run([str(BIN / "fnkit"), "client", "typescript", "--out", str(out)], ROOT)
    shutil.copy(CLIENTS / "roundtrip.ts", out / "roundtrip.ts")
    (out / "node_modules").symlink_to(TOOLS)
    (out / "package.json").write_text('{"type": "module"}\n')
    config = {
        "compilerOptions": {
            "strict": True,
            "target": "es2022",
            "module": "nodenext",
            "moduleResolution": "nodenext",
            "outDir": "dist",
            "types": ["node"],
            # our files get every strict check; the libraries' own .d.ts are theirs to check
            # (checking supabase-js's costs ~5 s of CPU)
            "skipLibCheck": True,
        },
        "include": ["*.ts"],
    }
    (out / "tsconfig.json").write_text(json.dumps(config))
    return out


def _environment(served: Served) -> dict[str, str]:
    return {
        **os.environ,
        "FUNCTIONS_URL": f"{served.url}/functions/v1",
        "SUPABASE_URL": served.auth.url,
        "SUPABASE_KEY": DEV_PUBLISHABLE_KEY,
    }


@pytest.fixture
def cleanup(db_admin: Any) -> Iterator[list[dict[str, Any]]]:
    """The round trips' workspaces (with everything in them) and users, deleted afterwards."""
    made: list[dict[str, Any]] = []
    yield made
    for answer in made:
        owner = db_admin.execute(
            "select created_by from public.workspaces where id = %s", (answer["workspace"],)
        ).fetchone()
        db_admin.execute("delete from public.workspaces where id = %s", (answer["workspace"],))
        if owner is not None:
            db_admin.execute("delete from auth.users where id = %s", (owner[0],))


def test_the_python_client_passes_mypy_strict(python_client: Path) -> None:
    cache = python_client.parent / ".mypy_cache"
    command = [str(BIN / "mypy"), "--strict", "--cache-dir", str(cache), "functions_client"]
    _run([*command, str(CLIENTS / "roundtrip.py")], python_client)


def test_the_typescript_client_passes_tsc_strict(typescript_client: Path) -> None:
    _run([str(TOOLS / ".bin" / "tsc"), "-p", "."], typescript_client)
    assert (typescript_client / "dist" / "invoke.example.js").exists()


def test_the_python_client_round_trip(
    served: Served, python_client: Path, cleanup: list[dict[str, Any]]
) -> None:
    env = {**_environment(served), "PYTHONPATH": str(python_client)}
    printed = _run([str(BIN / "python"), str(CLIENTS / "roundtrip.py")], ROOT, env)
    answer = json.loads(printed)
    cleanup.append(answer)
    assert answer["pages"] == 2 and len(answer["tasks"]) == 3
    assert answer["loc"] == ["body", "title"] and answer["stale"] == 412


def test_the_typescript_client_round_trip(
    served: Served, typescript_client: Path, cleanup: list[dict[str, Any]]
) -> None:
    if not (typescript_client / "dist" / "roundtrip.js").exists():
        _run([str(TOOLS / ".bin" / "tsc"), "-p", "."], typescript_client)
    # supabase-js 2.119 wants a global WebSocket (Node 22 has one; Node 20 behind this flag)
    command = ["node", "--experimental-websocket", "dist/roundtrip.js"]
    printed = _run(command, typescript_client, _environment(served))
    answer = json.loads(printed)
    cleanup.append(answer)
    assert answer["pages"] == 2 and len(answer["tasks"]) == 3
    assert answer["loc"] == ["body", "title"] and answer["stale"] == 412


def test_the_served_documents_are_shaped_for_generators(served: Served) -> None:
    """What the generators needed (issue 25): no component shadowing a language's `Error`,
    every request body and success answer a named component, typed error details, operation
    ids unique across functions, and the headers a route reads declared on it."""
    names = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))
    with served.client() as client:
        documents = {name: client.get(f"/{name}/openapi.json").json() for name in names}
    operation_ids: list[str] = []
    for name, document in documents.items():
        schemas = document["components"]["schemas"]
        assert "Error" not in schemas and "ErrorEnvelope" in schemas, name
        assert schemas["ErrorDetail"]["required"] == ["loc", "type", "message"]
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                operation_ids.append(operation["operationId"])
                assert operation["operationId"].startswith(f"{name}_"), (path, method)
                body = operation.get("requestBody", {}).get("content", {})
                if body:
                    assert set(body["application/json"]["schema"]) == {"$ref"}, (path, method)
                for status, answer in operation["responses"].items():
                    schema = answer.get("content", {}).get("application/json", {}).get("schema")
                    if status >= "400":
                        assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
                    elif schema is not None and operation.get("x-answer") == "envelope":
                        assert set(schema) == {"$ref"}, (path, method, schema)
    assert len(operation_ids) == len(set(operation_ids))
    tasks = documents["tasks"]["paths"]["/tasks/{id}"]
    for method in ("patch", "delete"):
        headers = {p["name"] for p in tasks[method]["parameters"] if p["in"] == "header"}
        assert "If-Match" in headers and "412" in tasks[method]["responses"], method
    assert "412" not in tasks["get"]["responses"]
    create = documents["tasks"]["paths"]["/tasks"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
