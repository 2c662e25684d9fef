-- fnkit bootstrap: give plain PostgreSQL (15 or 16) what a Supabase project provides, so the
-- same migrations, policies and tests run on the machine's Postgres, the embedded pgserver and
-- Supabase. NEVER apply this to a real Supabase project: fnkit.db.bootstrap() skips it when the
-- role supabase_admin exists.
--
-- Idempotent: every create is guarded, so running it twice (or on an older bootstrap) is safe.
-- Core features only: the embedded Postgres ships no contrib extensions (gen_random_uuid() is
-- core since PG 13). Must run as a superuser (BYPASSRLS and security definer ownership need it).

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide). Same attributes as Supabase: API roles cannot log in and do not inherit;
-- PostgREST logs in as authenticator and switches role per request.
-- ---------------------------------------------------------------------------------------------
do $$
declare
  spec record;
begin
  for spec in
    select * from (values
      ('anon', 'nologin noinherit'),
      ('authenticated', 'nologin noinherit'),
      ('service_role', 'nologin noinherit bypassrls'),
      ('authenticator', 'login noinherit')
    ) as t(name, options)
  loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = spec.name) then
      begin
        execute format('create role %I %s', spec.name, spec.options);
      exception when duplicate_object or unique_violation then
        null; -- a concurrent bootstrap of another database on this server created it first
      end;
    end if;
  end loop;

  if not (select rolbypassrls from pg_catalog.pg_roles where rolname = 'service_role') then
    alter role service_role bypassrls;
  end if;

  -- Grant only what is missing: roles are shared by every database of the server, and writing
  -- the shared catalog on each run would race between parallel test sessions.
  for spec in select unnest(array['anon', 'authenticated', 'service_role']) as name loop
    if not exists (
      select 1
      from pg_catalog.pg_auth_members m
      join pg_catalog.pg_roles granted on granted.oid = m.roleid
      join pg_catalog.pg_roles member on member.oid = m.member
      where granted.rolname = spec.name and member.rolname = 'authenticator'
    ) then
      execute format('grant %I to authenticator', spec.name);
    end if;
  end loop;
end
$$;

-- Supabase's grants on public: tables, functions and sequences that migrations create are
-- reachable by the API roles, and RLS policies decide what each role sees.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- extensions: where Supabase installs extensions; migrations may reference it.
-- ---------------------------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- auth: the users table GoTrue owns, and the claim helpers policies call.
-- ---------------------------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key default gen_random_uuid(),
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email text unique,
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  phone text unique,
  phone_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb default '{}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_super_admin boolean,
  banned_until timestamptz,
  deleted_at timestamptz,
  is_sso_user boolean not null default false,
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
-- GoTrue's type for email: varchar(255), so an over-long address fails here as on Supabase.
alter table auth.users alter column email type varchar(255);
-- Like Supabase, the API roles get no privileges on auth.users: policies reach it through
-- security definer helpers, never directly.

-- The four helpers below are Supabase's definitions: the legacy per-claim setting
-- (request.jwt.claim.<name>) wins, else the claim from the request.jwt.claims JSON.
create or replace function auth.uid()
returns uuid
language sql stable
as $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role()
returns text
language sql stable
as $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email()
returns text
language sql stable
as $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt()
returns jsonb
language sql stable
as $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- Realtime: the publication Postgres Changes reads, and Broadcast from the database.
-- ---------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

-- Supabase partitions this table by day; one plain table is enough outside Supabase.
create table if not exists realtime.messages (
  id uuid primary key default gen_random_uuid(),
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  inserted_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table realtime.messages enable row level security;
alter table realtime.messages alter column private set default false;
-- Supabase's grants: the API roles may select, insert and update; RLS decides which rows.
revoke all on realtime.messages from anon, authenticated, service_role;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;
create index if not exists messages_topic_idx on realtime.messages (topic);
-- The scheduled trim (private.trim_history) removes old messages by age.
create index if not exists messages_inserted_at_idx on realtime.messages (inserted_at);

-- The topic being authorized; Realtime sets it before checking policies on realtime.messages.
create or replace function realtime.topic()
returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

-- Supabase's definition (realtime's tenant migrations): security INVOKER and no search_path, so
-- the message is inserted as whoever calls it (a trigger function's owner when that function is
-- security definer) and a caller without INSERT on realtime.messages (or a policy letting it)
-- loses the broadcast to a warning, here as on Supabase. The payload gets an `id` (the message's)
-- unless it has one. Errors become a warning, so a broadcast never aborts the user's write.
create or replace function realtime.send(
  payload jsonb, event text, topic text, private boolean default true
)
returns void
language plpgsql
security invoker
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;
-- Older bootstraps made it security definer with a search_path: say the intent explicitly.
alter function realtime.send(jsonb, text, text, boolean) security invoker;
alter function realtime.send(jsonb, text, text, boolean) reset search_path;

-- Supabase's signature and payload ({old_record, record, operation, table, schema}); called
-- from a row trigger as realtime.broadcast_changes(topic, TG_OP, TG_OP, TG_TABLE_NAME,
-- TG_TABLE_SCHEMA, NEW, OLD).
create or replace function realtime.broadcast_changes(
  topic_name text,
  event_name text,
  operation text,
  table_name text,
  table_schema text,
  new record,
  old record,
  level text default 'ROW'
)
returns void
language plpgsql
security invoker
as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation in ('INSERT', 'UPDATE', 'DELETE') then
    row_data := pg_catalog.jsonb_build_object(
      'old_record', old,
      'record', new,
      'operation', operation,
      'table', table_name,
      'schema', table_schema
    );
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
exception
  when others then
    raise exception 'Failed to process the row: %', sqlerrm;
end;
$$;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  security invoker;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  reset search_path;

grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- storage: the tables Storage keeps its metadata in (policies on storage.objects authorize
-- uploads and downloads) and the path helpers those policies use.
-- ---------------------------------------------------------------------------------------------
create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  metadata jsonb,
  path_tokens text[] generated always as (pg_catalog.string_to_array(name, '/')) stored,
  version text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now()
);
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

-- Supabase's definitions: 'a/b/c.png' -> {a,b}, 'c.png', 'png'.
create or replace function storage.foldername(name text)
returns text[]
language plpgsql
immutable
as $$
declare
  _parts text[];
begin
  select pg_catalog.string_to_array(name, '/') into _parts;
  return _parts[1:pg_catalog.array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text)
returns text
language plpgsql
immutable
as $$
declare
  _parts text[];
begin
  select pg_catalog.string_to_array(name, '/') into _parts;
  return _parts[pg_catalog.array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text)
returns text
language plpgsql
immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select pg_catalog.string_to_array(name, '/') into _parts;
  select _parts[pg_catalog.array_length(_parts, 1)] into _filename;
  return pg_catalog.reverse(pg_catalog.split_part(pg_catalog.reverse(_filename), '.', 1));
end
$$;

grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- supabase_functions: the trigger function Supabase's Database Webhooks create triggers with,
-- supabase_functions.http_request(url, method, headers, params, timeout_ms) as trigger
-- arguments. On Supabase it posts through pg_net; here it queues the call, with the payload
-- Supabase sends ({type, table, schema, record, old_record}), and `make dev`
-- (fnkit/local/webhooks.py) delivers the queue with retries and backoff. The call is queued
-- in the writing transaction, so a rolled-back write sends nothing and a function that is down
-- loses nothing.
-- ---------------------------------------------------------------------------------------------
create schema if not exists supabase_functions;
grant usage on schema supabase_functions to anon, authenticated, service_role;

create table if not exists supabase_functions.delivery_queue (
  id bigserial primary key,
  url text not null,
  method text not null,
  headers jsonb not null default '{}'::jsonb,
  params jsonb not null default '{}'::jsonb,
  payload jsonb,
  timeout_ms integer not null default 1000,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  failed_at timestamptz,
  last_status integer,
  last_error text,
  created_at timestamptz not null default now()
);
create index if not exists delivery_queue_pending_idx
  on supabase_functions.delivery_queue (next_attempt_at) where delivered_at is null and failed_at is null;
revoke all on supabase_functions.delivery_queue from public, anon, authenticated, service_role;

-- Supabase's attributes: security definer, search_path = supabase_functions, execute revoked
-- from PUBLIC and granted to the API roles. (The body qualifies every name anyway.)
create or replace function supabase_functions.http_request()
returns trigger
language plpgsql
security definer
set search_path = supabase_functions
as $$
declare
  url text := TG_ARGV[0]::text;
  method text := TG_ARGV[1]::text;
  headers jsonb := '{"Content-Type": "application/json"}'::jsonb;
  params jsonb := '{}'::jsonb;
  timeout_ms integer := 1000;
  queued bigint;
begin
  if url is null or url = 'null' then
    raise exception 'url argument is missing';
  end if;
  if method is null or method = 'null' then
    raise exception 'method argument is missing';
  end if;
  if method not in ('GET', 'POST') then
    raise exception 'method argument % is invalid', method;
  end if;
  if TG_ARGV[2] is not null and TG_ARGV[2] <> 'null' then
    headers := TG_ARGV[2]::jsonb;
  end if;
  if TG_ARGV[3] is not null and TG_ARGV[3] <> 'null' then
    params := TG_ARGV[3]::jsonb;
  end if;
  if TG_ARGV[4] is not null and TG_ARGV[4] <> 'null' then
    timeout_ms := TG_ARGV[4]::integer;
  end if;
  insert into supabase_functions.delivery_queue (url, method, headers, params, payload, timeout_ms)
  values (
    url, method, headers, params,
    case when method = 'POST' then pg_catalog.jsonb_build_object(
      'old_record', OLD, 'record', NEW, 'type', TG_OP,
      'table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA
    ) end,
    timeout_ms
  )
  returning id into queued;
  perform pg_catalog.pg_notify('supabase_functions_delivery', queued::text);
  return new;
end;
$$;
revoke all on function supabase_functions.http_request() from public;
grant execute on function supabase_functions.http_request() to anon, authenticated, service_role;
