"""The local Supabase that `make dev` serves, with no Docker: one base URL, one module a service.

As on Supabase, one gateway (`gateway.py`) puts the HTTP services under one origin, behind the
project's API keys as Supabase's gateway handles them:

- `/functions/v1/<name>` → the functions (`fnkit.devserver`)
- `/auth/v1` → Auth, answering as Supabase Auth (GoTrue) does, calling the Auth hooks (`auth/`)
- `/storage/v1` → Storage, authorizing through the `storage.objects` policies (`storage/`)
- `/realtime/v1` → Realtime: broadcast, presence, and Postgres Changes read from the database's
  own change stream (`realtime/`)

Beside them, the stand-ins for what Supabase and Upstash run elsewhere: `postgres.py` (an
embedded Postgres when none is configured, with logical decoding), `upstash/` (the Upstash REST
protocol in front of Redis) and `webhooks.py` (database webhooks delivered from their queue, as
pg_net would). `config.py` holds what the services share (base URL, database, keys, hook URIs),
`keys.py` the keys user tokens are signed with, `tokens.py` how the services verify tokens,
`suites.py` the run of supabase-py's own suites against them (`make parity-supabase`).

Everything here is for local development and tests only: it listens on loopback, is never
bundled with a function, and the real clients (supabase-py, supabase-js, upstash-redis) are the
measure of its fidelity (docs/deploy.md, "Local stand-ins").
"""
