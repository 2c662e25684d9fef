"""Print a workspace's changes as they happen, both ways Supabase Realtime delivers them.

1. Postgres Changes on `public.tasks`, filtered to the workspace. Realtime reads the
   `supabase_realtime` publication and checks each row against the subscriber's SELECT
   policies, so a user only hears about tasks they may read.
2. The private broadcast channel `workspace:<id>`, fed by the database triggers
   (`realtime.broadcast_changes`) for workspaces, members, projects, tasks and comments.
   Joining it is authorized by the policy on `realtime.messages`: members only.

Run it against your Supabase project (or `supabase start`), as a member of the workspace:

    export SUPABASE_URL=https://<project-ref>.supabase.co
    export SUPABASE_PUBLISHABLE_KEY=sb_publishable_...
    python examples/subscribe.py <workspace-id> --email you@example.com --password '...'
    # or with an access token your app already has (it is not refreshed):
    python examples/subscribe.py <workspace-id> --access-token "$TOKEN"

Each change is printed as one JSON line; stop with Ctrl-C (or `--seconds`, `--max-events`).
The migrations set up what this needs on the database side: the publication, the triggers
and the policy on `realtime.messages` that private channels are authorized by.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from realtime import (
    BroadcastPayload,
    PostgresChangesPayload,
    RealtimeChannelOptions,
    RealtimePostgresChangesListenEvent,
    RealtimeSubscribeStates,
)
from supabase import AsyncClient, acreate_client

Emit = Callable[[dict[str, Any]], None]
TASK_FIELDS = ("id", "project_id", "title", "status", "assignee_id", "version")


# ---- what gets printed ----------------------------------------------------------------------


def _pick(record: dict[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    if not record:
        return None
    return {key: record[key] for key in fields if key in record}


def describe_postgres_change(payload: PostgresChangesPayload) -> dict[str, Any]:
    """One line for a Postgres Changes event (Realtime's `data`: type, table, record...)."""
    data = payload["data"]
    return {
        "via": "postgres_changes",
        "type": str(getattr(data["type"], "value", data["type"])),
        "table": f"{data['schema']}.{data['table']}",
        "at": data.get("commit_timestamp"),
        "record": _pick(data.get("record"), TASK_FIELDS),
        "old": _pick(data.get("old_record"), TASK_FIELDS),
        "errors": data.get("errors") or None,
    }


def describe_broadcast(payload: BroadcastPayload) -> dict[str, Any]:
    """One line for a database broadcast: `payload` is what realtime.broadcast_changes sent
    ({operation, table, schema, record, old_record})."""
    change = payload.get("payload") or {}
    record = change.get("record") or {}
    old = change.get("old_record") or {}
    fields = ("id", "title", "name", "status", "role", "body", "user_id", "version")
    return {
        "via": "broadcast",
        "type": payload.get("event"),
        "table": f"{change.get('schema', '?')}.{change.get('table', '?')}",
        "record": _pick(record, fields) or None,
        "old": _pick(old, fields) or None,
    }


def print_line(line: dict[str, Any]) -> None:
    print(json.dumps(line, default=str), flush=True)


# ---- subscribing ----------------------------------------------------------------------------


def private_channel_options() -> RealtimeChannelOptions:
    return {
        "config": {
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": "", "enabled": False},
            "private": True,
        }
    }


async def subscribe(
    client: AsyncClient, workspace_id: uuid.UUID, emit: Emit
) -> list[RealtimeSubscribeStates]:
    """Join both channels; return their subscribe states (SUBSCRIBED when all went well)."""
    states: list[RealtimeSubscribeStates] = []

    def on_state(name: str) -> Callable[[RealtimeSubscribeStates, Exception | None], None]:
        def report(state: RealtimeSubscribeStates, error: Exception | None) -> None:
            states.append(state)
            error_text = str(error) if error else None
            emit({"via": "status", "channel": name, "state": state.value, "error": error_text})

        return report

    changes = client.channel(f"tasks-of-{workspace_id}")
    changes.on_postgres_changes(
        RealtimePostgresChangesListenEvent.All,
        lambda payload: emit(describe_postgres_change(payload)),
        table="tasks",
        schema="public",
        filter=f"workspace_id=eq.{workspace_id}",
    )
    await changes.subscribe(on_state("postgres_changes"))

    topic = f"workspace:{workspace_id}"  # the topic the triggers send to, and the policy checks
    broadcast = client.channel(topic, private_channel_options())
    broadcast.on_broadcast("*", lambda payload: emit(describe_broadcast(payload)))
    await broadcast.subscribe(on_state(topic))
    return states


async def run(args: argparse.Namespace, emit: Emit = print_line) -> int:
    url = args.url or os.environ.get("SUPABASE_URL")
    key = (
        args.anon_key
        or os.environ.get("SUPABASE_PUBLISHABLE_KEY")
        or os.environ.get("SUPABASE_ANON_KEY")
    )
    if not url or not key:
        print(
            "set SUPABASE_URL and SUPABASE_PUBLISHABLE_KEY (or the legacy SUPABASE_ANON_KEY;"
            " or --url, --anon-key)",
            file=sys.stderr,
        )
        return 2
    client = await acreate_client(url, key)
    if args.access_token:
        token = args.access_token
    else:
        if not (args.email and args.password):
            print("give --access-token, or --email and --password", file=sys.stderr)
            return 2
        auth = await client.auth.sign_in_with_password(
            {"email": args.email, "password": args.password}
        )
        assert auth.session is not None
        token = auth.session.access_token  # refreshed tokens reach Realtime by themselves
    # Private channels and RLS-checked Postgres Changes act as the user, not the anon key.
    await client.realtime.set_auth(token)

    received = 0
    done = asyncio.Event()

    def count(line: dict[str, Any]) -> None:
        nonlocal received
        emit(line)
        if line["via"] != "status":
            received += 1
            if args.max_events and received >= args.max_events:
                done.set()

    states = await subscribe(client, args.workspace_id, count)
    if any(state != RealtimeSubscribeStates.SUBSCRIBED for state in states):
        await client.remove_all_channels()
        return 1
    try:
        await asyncio.wait_for(done.wait(), timeout=args.seconds)
    except TimeoutError:
        pass
    finally:
        await client.remove_all_channels()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace_id", type=uuid.UUID)
    parser.add_argument("--url", help="default: $SUPABASE_URL")
    parser.add_argument(
        "--anon-key",
        help="the publishable (or legacy anon) key; default: $SUPABASE_PUBLISHABLE_KEY",
    )
    parser.add_argument("--email")
    parser.add_argument("--password")
    parser.add_argument("--access-token", help="a user's JWT instead of signing in")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run; a server that does not answer or a refused sign-in is one line, not a traceback."""
    from httpx import HTTPError
    from supabase_auth.errors import AuthError
    from websockets.exceptions import InvalidHandshake

    args = parse_args(argv)
    where = args.url or os.environ.get("SUPABASE_URL") or "SUPABASE_URL"
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    except AuthError as exc:
        print(f"Supabase Auth refused the sign-in: {exc.message}", file=sys.stderr)
    except (OSError, HTTPError, InvalidHandshake) as exc:
        print(
            f"nothing answers at {where} (Auth, or Realtime at /realtime/v1): {exc};"
            " is `make dev` (or your Supabase project) running?",
            file=sys.stderr,
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
