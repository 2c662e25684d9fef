-- Events in: what the `hooks` function needs.
-- * public.notifications: one row per task assignment change, written by the database webhook
--   receiver (POST /hooks/task-assigned); each user reads their own, also through Realtime.
-- * public.signup_denied_domains and public.signup_invitations: the Before User Created hook's
--   deny list and the addresses that always pass; managed by the service role only.
-- * The database webhook on public.tasks, as Supabase's dashboard creates it (a trigger
--   calling supabase_functions.http_request(url, method, headers, params, timeout_ms)), whose
--   URL and secret are data in private.webhook_settings, not text in this file.
--
-- Why the URL is a row and not a literal: trigger arguments are fixed strings, and the URL of
-- the receiver differs per environment (Cloud Run on a project, `make dev` on a laptop, the
-- test server's random port). So private.install_task_assigned_webhook() (re)creates the
-- trigger from the row named 'task_assigned', and a statement trigger on the settings table
-- calls it whenever the row changes: `insert ... on conflict do update` is all an environment
-- does. Until the row exists no trigger exists, so nothing calls a wrong URL. `fnkit dev`
-- writes the local row; docs/deploy.md shows the row for a hosted project.
--
-- Runs unchanged on Supabase (supabase_functions comes with Database Webhooks enabled) and on
-- plain Postgres, where fnkit's bootstrap provides a supabase_functions.http_request() that
-- queues the call for `make dev` to deliver.

-- ---------------------------------------------------------------------------------------------
-- Notifications
-- ---------------------------------------------------------------------------------------------

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  task_id uuid references public.tasks (id) on delete cascade,
  kind text not null constraint notifications_kind_check check (kind in ('task_assigned')),
  -- The change this notification is for (e.g. task_assigned:<task id>:<task version>): a
  -- change delivered twice (webhooks are at-least-once) records one notification.
  event_key text not null constraint notifications_event_key_key unique,
  payload jsonb not null default '{}'::jsonb,
  read_at timestamptz,
  created_at timestamptz not null default now()
);
comment on table public.notifications is
  'What happened that a user should know about; each user reads (and marks read) their own.';

create index notifications_user_id_created_at_idx on public.notifications (user_id, created_at desc);
create index notifications_workspace_id_idx on public.notifications (workspace_id);
create index notifications_task_id_idx on public.notifications (task_id);

alter table public.notifications enable row level security;

create policy notifications_select_own on public.notifications
  for select to authenticated
  using (user_id = (select auth.uid()));

create policy notifications_update_own on public.notifications
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on table public.notifications from anon, authenticated;
grant select on table public.notifications to authenticated;
grant update (read_at) on table public.notifications to authenticated;
grant all on table public.notifications to service_role;

-- Postgres Changes: a client subscribes to INSERTs on notifications; Realtime applies the
-- SELECT policy per subscriber, so each user receives their own.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    raise notice 'publication supabase_realtime does not exist: notifications not published';
  elsif not (select puballtables from pg_catalog.pg_publication where pubname = 'supabase_realtime')
    and not exists (
      select 1 from pg_catalog.pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'notifications'
    )
  then
    alter publication supabase_realtime add table public.notifications;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Sign-up policy (Before User Created hook)
-- ---------------------------------------------------------------------------------------------

create table public.signup_denied_domains (
  domain text primary key constraint signup_denied_domains_domain_format
    check (domain = lower(domain) and domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
  reason text,
  created_at timestamptz not null default now()
);
comment on table public.signup_denied_domains is
  'E-mail domains (and their subdomains) that may not sign up, unless invited.';

create table public.signup_invitations (
  email text primary key constraint signup_invitations_email_format
    check (email = lower(email) and position('@' in email) > 1),
  invited_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now()
);
comment on table public.signup_invitations is
  'Addresses invited by a member: they pass the Before User Created hook whatever their domain.';
create index signup_invitations_invited_by_idx on public.signup_invitations (invited_by);

-- Service role only: RLS on with no policy for anon or authenticated, and no privileges.
alter table public.signup_denied_domains enable row level security;
alter table public.signup_invitations enable row level security;
revoke all on table public.signup_denied_domains, public.signup_invitations from anon, authenticated;
grant all on table public.signup_denied_domains, public.signup_invitations to service_role;

-- ---------------------------------------------------------------------------------------------
-- The database webhook on tasks
-- ---------------------------------------------------------------------------------------------

create table private.webhook_settings (
  name text primary key constraint webhook_settings_name_format check (name ~ '^[a-z_]{1,63}$'),
  url text not null constraint webhook_settings_url_format check (url ~ '^https?://[^\s]+$'),
  -- The whole Authorization header value, e.g. 'Bearer <DB_WEBHOOK_SECRET>'.
  authorization_header text,
  timeout_ms integer not null default 5000
    constraint webhook_settings_timeout_range check (timeout_ms between 100 and 60000),
  updated_at timestamptz not null default now()
);
comment on table private.webhook_settings is
  'Where each database webhook calls, per environment; changing a row re-creates its trigger.';
revoke all on table private.webhook_settings from public, anon, authenticated, service_role;

-- (Re)create the trigger exactly as the dashboard would, from the 'task_assigned' row.
create or replace function private.install_task_assigned_webhook()
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  s private.webhook_settings;
  headers jsonb := '{"Content-Type": "application/json"}'::jsonb;
begin
  drop trigger if exists task_assigned_webhook on public.tasks;
  if pg_catalog.to_regprocedure('supabase_functions.http_request()') is null then
    raise notice 'supabase_functions.http_request() is missing (enable Database Webhooks)';
    return false;
  end if;
  select * into s from private.webhook_settings where name = 'task_assigned';
  if not found then
    return false;  -- not configured in this environment: no webhook
  end if;
  if s.authorization_header is not null then
    headers := headers || pg_catalog.jsonb_build_object('Authorization', s.authorization_header);
  end if;
  execute pg_catalog.format(
    'create trigger task_assigned_webhook after insert or update of assignee_id on public.tasks'
    ' for each row execute function supabase_functions.http_request(%L, %L, %L, %L, %L)',
    s.url, 'POST', headers::text, '{}', s.timeout_ms::text
  );
  return true;
end;
$$;

create or replace function private.webhook_settings_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.install_task_assigned_webhook();
  return null;
end;
$$;

create trigger webhook_settings_changed
  after insert or update or delete on private.webhook_settings
  for each statement execute function private.webhook_settings_changed();

revoke all on function private.install_task_assigned_webhook() from public, anon, authenticated;
revoke all on function private.webhook_settings_changed() from public, anon, authenticated;

select private.install_task_assigned_webhook();
