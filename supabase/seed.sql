-- Demo data for development: five users, the workspace "Acme" with three projects, 600 tasks and
-- 400 comments, and a second workspace only the outsider belongs to.
--
-- Idempotent: fixed ids and `on conflict do nothing` everywhere, so the dev server can apply it
-- on every start; a second run changes nothing. Deterministic: no random(); values derive from
-- the row number. Dates are relative to the day the seed first runs (due dates around today,
-- creation spread over the last 100 days, completions over the last 12 weeks), so "overdue" and
-- "completed per week" have something to count.
--
-- Runs without a JWT (auth.uid() is null): the audit trail records these inserts with a null
-- actor, and ids of creators and authors are given explicitly.
--
--   11111111-1111-1111-1111-111111111111  owner@example.com     owner of Acme
--   22222222-2222-2222-2222-222222222222  admin@example.com     admin of Acme
--   33333333-3333-3333-3333-333333333333  member@example.com    member of Acme
--   44444444-4444-4444-4444-444444444444  viewer@example.com    viewer of Acme
--   55555555-5555-5555-5555-555555555555  outsider@example.com  owner of "Outpost" only
--
--   a0000000-0000-4000-8000-000000000001  workspace Acme (slug acme)
--   a0000000-0000-4000-8000-000000000002  workspace Outpost (slug outpost)
--   b0000000-0000-4000-8000-00000000000{1,2,3}  Acme's projects, ...04 Outpost's
--   c0000000-0000-4000-8000-000000000NNN  Acme's tasks 1..600, ...0001NNN Outpost's 1..10
--   d0000000-0000-4000-8000-000000000NNN  comments

-- Users ---------------------------------------------------------------------------------------

insert into auth.users (
  instance_id, id, aud, role, email, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at
)
select
  '00000000-0000-0000-0000-000000000000'::uuid, u.id, 'authenticated', 'authenticated', u.email,
  now(), '{"provider": "email", "providers": ["email"]}'::jsonb,
  jsonb_build_object('full_name', u.full_name), now(), now()
from (values
  ('11111111-1111-1111-1111-111111111111'::uuid, 'owner@example.com', 'Olivia Owner'),
  ('22222222-2222-2222-2222-222222222222'::uuid, 'admin@example.com', 'Adam Admin'),
  ('33333333-3333-3333-3333-333333333333'::uuid, 'member@example.com', 'Mia Member'),
  ('44444444-4444-4444-4444-444444444444'::uuid, 'viewer@example.com', 'Victor Viewer'),
  ('55555555-5555-5555-5555-555555555555'::uuid, 'outsider@example.com', 'Oscar Outsider')
) as u (id, email, full_name)
on conflict do nothing;

-- Make the users able to sign in with the password `password123`, on Supabase (`supabase start`)
-- and on the local Auth of `make dev` alike: GoTrue needs '' rather than NULL in its token
-- columns, a bcrypt hash and an email identity. The hash is pgcrypto's crypt where pgcrypto is
-- installed, else this fixed bcrypt hash of `password123` (cost 10, as GoTrue hashes; the
-- embedded Postgres has no pgcrypto). Each step runs only where its objects exist.
do $$
declare
  seeded uuid[] := array[
    '11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222',
    '33333333-3333-3333-3333-333333333333', '44444444-4444-4444-4444-444444444444',
    '55555555-5555-5555-5555-555555555555'
  ]::uuid[];
  token_column text;
begin
  for token_column in
    select c.column_name from information_schema.columns c
    where c.table_schema = 'auth' and c.table_name = 'users'
      and c.column_name in (
        'confirmation_token', 'recovery_token', 'email_change_token_new',
        'email_change_token_current', 'email_change', 'phone_change', 'phone_change_token',
        'reauthentication_token'
      )
  loop
    execute format(
      'update auth.users set %1$I = '''' where id = any ($1) and %1$I is null', token_column
    ) using seeded;
  end loop;

  if to_regprocedure('extensions.crypt(text, text)') is not null
     and to_regprocedure('extensions.gen_salt(text)') is not null then
    execute 'update auth.users set encrypted_password = extensions.crypt($2, extensions.gen_salt(''bf''))'
      ' where id = any ($1) and encrypted_password is null'
      using seeded, 'password123';
  else
    update auth.users
    set encrypted_password = '$2a$10$VJdr7KO49iXZUdLTK.YOsOqKtDfYSTAhOoz4CFY/Pp/c7GnW/tknC'
    where id = any (seeded) and encrypted_password is null;
  end if;

  if to_regclass('auth.identities') is not null then
    begin
      execute 'insert into auth.identities'
        ' (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)'
        ' select u.id::text, u.id,'
        ' jsonb_build_object(''sub'', u.id::text, ''email'', u.email, ''email_verified'', true),'
        ' ''email'', now(), now(), now()'
        ' from auth.users u where u.id = any ($1)'
        ' on conflict do nothing'
        using seeded;
    exception when others then
      raise notice 'seed: auth.identities not filled (%): sign in with `fnkit token` instead', sqlerrm;
    end;
  end if;
end
$$;

-- Workspaces and members ----------------------------------------------------------------------
-- Inserting a workspace makes created_by its owner (trigger); the owner rows below are then
-- already there.

insert into public.workspaces (id, name, slug, created_by, created_at, updated_at) values
  ('a0000000-0000-4000-8000-000000000001', 'Acme', 'acme',
   '11111111-1111-1111-1111-111111111111', now() - interval '120 days', now() - interval '120 days'),
  ('a0000000-0000-4000-8000-000000000002', 'Outpost', 'outpost',
   '55555555-5555-5555-5555-555555555555', now() - interval '30 days', now() - interval '30 days')
on conflict do nothing;

insert into public.workspace_members (workspace_id, user_id, role, created_at) values
  ('a0000000-0000-4000-8000-000000000001', '11111111-1111-1111-1111-111111111111', 'owner',
   now() - interval '120 days'),
  ('a0000000-0000-4000-8000-000000000001', '22222222-2222-2222-2222-222222222222', 'admin',
   now() - interval '119 days'),
  ('a0000000-0000-4000-8000-000000000001', '33333333-3333-3333-3333-333333333333', 'member',
   now() - interval '118 days'),
  ('a0000000-0000-4000-8000-000000000001', '44444444-4444-4444-4444-444444444444', 'viewer',
   now() - interval '117 days'),
  ('a0000000-0000-4000-8000-000000000002', '55555555-5555-5555-5555-555555555555', 'owner',
   now() - interval '30 days')
on conflict do nothing;

-- Projects ------------------------------------------------------------------------------------

insert into public.projects (id, workspace_id, name, description, created_by, created_at, updated_at)
values
  ('b0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'Website',
   'The public site and the sign-up funnel.', '11111111-1111-1111-1111-111111111111',
   now() - interval '110 days', now() - interval '110 days'),
  ('b0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000001', 'Mobile app',
   'iOS and Android clients.', '22222222-2222-2222-2222-222222222222',
   now() - interval '105 days', now() - interval '105 days'),
  ('b0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000001', 'Platform',
   'APIs, data and infrastructure.', '33333333-3333-3333-3333-333333333333',
   now() - interval '101 days', now() - interval '101 days'),
  ('b0000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000002', 'Scouting',
   'Only the outsider sees this.', '55555555-5555-5555-5555-555555555555',
   now() - interval '29 days', now() - interval '29 days')
on conflict do nothing;

-- Acme's 600 tasks ----------------------------------------------------------------------------
-- Task n: project (n-1) % 3 + 1; status from (7n) % 10: 0-3 todo (40%), 4-5 in_progress (20%),
-- 6 blocked (10%), 7-9 done (30%); priority (3n) % 5; assignee by n % 5 (owner, admin, member,
-- viewer, nobody); creator by n % 3 (owner, admin, member); created every 4 hours over the last
-- 100 days (task 600 the newest); a due date for 3 of 4 tasks, from 15 days ago to 29 days ahead.

insert into public.tasks (
  id, workspace_id, project_id, title, description, status, priority, assignee_id, due_date,
  position, created_by, created_at, updated_at, completed_at
)
select
  ('c0000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
  'a0000000-0000-4000-8000-000000000001'::uuid,
  ('b0000000-0000-4000-8000-' || lpad(((n - 1) % 3 + 1)::text, 12, '0'))::uuid,
  (array['Fix', 'Write', 'Review', 'Design', 'Ship', 'Test', 'Refactor', 'Document'])[n % 8 + 1]
    || ' '
    || (array['login flow', 'billing page', 'search index', 'onboarding email', 'push notifications',
              'export to CSV', 'dark mode', 'rate limiter', 'audit log', 'invite flow'])[(n / 8) % 10 + 1]
    || ' #' || n,
  case when n % 4 <> 0 then
    (array['Customers asked for this twice.', 'Blocked on the design review.',
           'Needs a migration and a backfill.', 'Small change, big impact.',
           'See the incident report from last week.'])[n % 5 + 1]
  end,
  s.status,
  ((3 * n) % 5)::smallint,
  (array['11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222',
         '33333333-3333-3333-3333-333333333333', '44444444-4444-4444-4444-444444444444',
         null])[n % 5 + 1]::uuid,
  case when n % 4 <> 0 then current_date + ((n * 7) % 45 - 15) end,
  n * 1024.0,
  (array['11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222',
         '33333333-3333-3333-3333-333333333333'])[n % 3 + 1]::uuid,
  t.created_at,
  case when s.status = 'done' then t.completed_at else t.created_at end,
  case when s.status = 'done' then t.completed_at end
from generate_series(1, 600) as n
cross join lateral (
  select case
    when (7 * n) % 10 < 4 then 'todo'
    when (7 * n) % 10 < 6 then 'in_progress'
    when (7 * n) % 10 < 7 then 'blocked'
    else 'done'
  end as status
) as s
cross join lateral (
  select
    now() - (601 - n) * interval '4 hours' as created_at,
    -- done within 1..14 days of creation, never in the future
    least(now() - (601 - n) * interval '4 hours' + (n % 14 + 1) * interval '1 day',
          now() - interval '1 hour') as completed_at
) as t
on conflict do nothing;

-- Outpost's 10 tasks (invisible to everyone but the outsider).
insert into public.tasks (id, workspace_id, project_id, title, status, priority, created_by, created_at, updated_at)
select
  ('c0000000-0000-4000-8000-' || lpad((1000 + n)::text, 12, '0'))::uuid,
  'a0000000-0000-4000-8000-000000000002'::uuid,
  'b0000000-0000-4000-8000-000000000004'::uuid,
  'Scout location #' || n,
  'todo',
  (n % 5)::smallint,
  '55555555-5555-5555-5555-555555555555'::uuid,
  now() - (10 - n) * interval '1 day',
  now() - (10 - n) * interval '1 day'
from generate_series(1, 10) as n
on conflict do nothing;

-- Comments: two on every third Acme task (400), by the task's creator and then by someone else
-- who may comment (never the viewer).
insert into public.task_comments (id, task_id, workspace_id, author_id, body, created_at, updated_at)
select
  ('d0000000-0000-4000-8000-' || lpad((n * 2 + k)::text, 12, '0'))::uuid,
  ('c0000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
  'a0000000-0000-4000-8000-000000000001'::uuid,
  (array['11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222',
         '33333333-3333-3333-3333-333333333333'])[(n + k) % 3 + 1]::uuid,
  (array['Picking this up.', 'Can we split this into two tasks?', 'Done on my side, please review.',
         'Waiting for feedback from the customer.', 'Added notes to the description.'])[(n + k) % 5 + 1],
  now() - (601 - n) * interval '4 hours' + (k + 1) * interval '1 hour',
  now() - (601 - n) * interval '4 hours' + (k + 1) * interval '1 hour'
from generate_series(3, 600, 3) as n
cross join generate_series(0, 1) as k
on conflict do nothing;
