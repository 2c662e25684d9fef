"""The local Supabase Auth: answers at `/auth/v1` as Supabase Auth (GoTrue) does.

supabase-py's and supabase-js's `auth` clients work against it unchanged: sign-up, password
sign-in, refresh-token rotation with reuse detection, the user, logout scopes, invites and
emailed links (kept in a local inbox, `mail.Inbox`), admin users, TOTP MFA, GoTrue's rate
limits, and the Custom Access Token and Before User Created hooks called over HTTP with
Standard Webhooks signatures. Users, identities, sessions, refresh tokens and factors live in
GoTrue's own `auth.*` tables (`fnkit/sql/auth.sql`), written as GoTrue writes them.

Modules: `app` (gateway key check, routing, error boundary), `routes_*` (the wire format per
area), `access` (access tokens, bearer check), `sessions`, `users`, `signup`, `verify`,
`otp` (emailed tokens), `pkce`, `hooks`, `ratelimit`, `mail`, `store` (reads and the user JSON),
`errors`, and `suite` (runs supabase-py's own Auth tests against this service).
"""

from __future__ import annotations

from fnkit.local.auth.app import create_app

__all__ = ["create_app"]
