-- Idempotency records: one row per (caller, function, route, key), written in the same
-- transaction as the change it guards. Server-only: lives in `private`, reached through
-- security definer functions that take the caller from the JWT, not from a parameter.

create schema if not exists private;

create table if not exists private.idempotency_keys (
  caller        text        not null,
  function_name text        not null,
  route         text        not null,
  key           text        not null check (length(key) between 1 and 255),
  fingerprint   text        not null,
  status_code   integer,
  response      jsonb,
  created_at    timestamptz not null default now(),
  expires_at    timestamptz not null default now() + interval '24 hours',
  primary key (caller, function_name, route, key)
);

create index if not exists idempotency_keys_expires_at_idx on private.idempotency_keys (expires_at);

revoke all on private.idempotency_keys from public, anon, authenticated;

-- Claim a key. A concurrent claim of the same key waits on the primary key until the first
-- transaction ends (bounded by lock_timeout → SQLSTATE 55P03 → 409 IDEMPOTENCY_KEY_IN_USE).
create or replace function private.idempotency_claim(
  p_anon_caller text, p_function text, p_route text, p_key text, p_fingerprint text
)
returns table (claimed boolean, fingerprint text, status_code integer, response jsonb)
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_caller text := coalesce((select auth.uid())::text, 'anon:' || p_anon_caller);
begin
  delete from private.idempotency_keys k
   where k.caller = v_caller and k.function_name = p_function and k.route = p_route
     and k.key = p_key and k.expires_at < now();
  insert into private.idempotency_keys as k (caller, function_name, route, key, fingerprint)
  values (v_caller, p_function, p_route, p_key, p_fingerprint)
  on conflict do nothing;
  if found then
    return query select true, p_fingerprint, null::integer, null::jsonb;
    return;
  end if;
  return query
    select false, k.fingerprint, k.status_code, k.response
      from private.idempotency_keys k
     where k.caller = v_caller and k.function_name = p_function and k.route = p_route
       and k.key = p_key;
end;
$$;

-- Record the outcome of a claimed key (same transaction as the change).
create or replace function private.idempotency_complete(
  p_anon_caller text, p_function text, p_route text, p_key text, p_status integer, p_response jsonb
)
returns void
language sql
security definer
set search_path = ''
as $$
  update private.idempotency_keys k
     set status_code = p_status, response = p_response
   where k.caller = coalesce((select auth.uid())::text, 'anon:' || p_anon_caller)
     and k.function_name = p_function and k.route = p_route and k.key = p_key;
$$;

-- Expired keys are deleted lazily on reuse; schedule this (pg_cron) to keep the table small.
create or replace function private.idempotency_purge()
returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (delete from private.idempotency_keys where expires_at < now() returning 1)
  select count(*)::integer from gone;
$$;

revoke all on function private.idempotency_claim(text, text, text, text, text) from public;
revoke all on function private.idempotency_complete(text, text, text, text, integer, jsonb) from public;
revoke all on function private.idempotency_purge() from public;
grant usage on schema private to anon, authenticated, service_role;
grant execute on function private.idempotency_claim(text, text, text, text, text) to anon, authenticated, service_role;
grant execute on function private.idempotency_complete(text, text, text, text, integer, jsonb) to anon, authenticated, service_role;
