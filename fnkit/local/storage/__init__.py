"""The local Supabase Storage at `/storage/v1`: Storage's HTTP API over Postgres and a folder.

storage3 (supabase-py's `client.storage`) works against it unchanged: its own test suite
passes (`suite.py`). What it keeps and where, as Supabase Storage keeps it:

- metadata in `storage.buckets` and `storage.objects` (columns from Storage's own migrations;
  `fnkit/sql/storage.sql` adds the ones bootstrap.sql lacks), read and written as the caller
  (`role` and `request.jwt.claims` set per transaction), so the project's policies decide;
- bytes under `LocalConfig.data_dir / "storage"`, one file per object version (`blobs.py`).

One module a job: `app.py` routes and renders errors, `routes_*.py` answer the endpoints
(buckets, objects, listing, signed URLs, move and copy), `render.py` answers with an object,
`objects.py` keeps rows and files in step, `uploads.py` reads bodies within the limits,
`signing.py` makes and checks signed URL tokens, `caller.py` verifies the bearer token,
`database.py` runs transactions as the caller, `errors.py` speaks Storage's error shape.
`suite.py` runs supabase-py's own Storage tests against it.
"""

from __future__ import annotations

from fnkit.local.storage.app import StorageApp, create_app

__all__ = ["StorageApp", "create_app"]
