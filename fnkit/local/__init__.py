"""The local Supabase that `make dev` serves, with no Docker: one base URL, one module a service.

As on Supabase, one gateway (`gateway.py`) puts every service under one origin:

- `/functions/v1/<name>` → the functions (`fnkit.devserver`)
- `/auth/v1` → Auth, answering as Supabase Auth (GoTrue) does (`auth/`)
- `/storage/v1` → Storage, authorizing through the `storage.objects` policies (`storage/`)

`config.py` holds the settings they share (base URL, database, signing keys, hook URIs),
`keys.py` the asymmetric keys user tokens are signed with. Everything here is for local
development and tests only: it listens on loopback, is never bundled with a function, and
the real clients (supabase-py, supabase-js) are the measure of its fidelity.
"""
