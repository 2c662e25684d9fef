"""The local Supabase Realtime, served at `/realtime/v1` by the gateway.

Phoenix channels as Realtime speaks them (vsn 1.0.0 and 2.0.0), so realtime-py, supabase-py and
supabase-js subscribe unchanged: Broadcast (client to client, REST, and from the database
through `realtime.messages`), Presence, and Postgres Changes read from the database's own
change stream and checked against each subscriber's policies. One module a job:

- `serializers` (wire formats), `websocket` (the upgrade on werkzeug), `wire` (every socket's
  I/O on one asyncio loop), `session` (one socket), `join` (a join's config, replay), `channel`
  (one joined channel), `hub` (topics and fan-out), `presence`;
- `auth` (tokens in Realtime's words), `policies` (private channels via `realtime.messages`);
- `pgoutput` (decoding), `bindings` (postgres_changes params and filters), `records` (payloads
  and RLS checks), `changes` (the slot and dispatch), `dbmessages` (broadcast from the database);
- `rest` (`POST /api/broadcast`), `app` (`create_app`), `bench` (`python -m
  fnkit.local.realtime.bench`: COMMIT-to-receipt delay and CPU with 100 subscribers), `suite`
  (`python -m fnkit.local.realtime.suite`: supabase-py's own Realtime tests against it).
"""

from fnkit.local.realtime.app import RealtimeApp, create_app

__all__ = ["RealtimeApp", "create_app"]
