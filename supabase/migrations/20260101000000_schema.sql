-- The task tracker's data model: tables, constraints, indexes and the triggers that keep rows
-- whole. Row-level security is in ..._rls.sql, realtime in ..._realtime.sql.
--
-- Runs unchanged on the machine's PostgreSQL 15, the embedded PostgreSQL 16 (no contrib
-- extensions: core features only) and a real Supabase project (`supabase db push`). It creates
-- none of the objects Supabase provides (auth.users, auth.uid(), storage, realtime): on plain
-- Postgres fnkit's bootstrap provides them.
--
-- Conventions
-- * Every function lives in the private schema (never exposed by PostgREST), pins
--   `search_path = ''` and names every object with its schema.
-- * Trigger functions that must write rows the caller may not write (audit trail, the creator's
--   owner membership) are `security definer`; they are owned by the migrating role, which owns
--   the tables and so is not subject to their RLS.
-- * Children carry the workspace_id of their parent (denormalized on purpose: every policy is
--   one indexed lookup `workspace_id in (<my workspaces>)`, never a join). A trigger fills it
--   from the parent when omitted and refuses a mismatch, so it can never disagree.

create schema if not exists private;
comment on schema private is
  'Helpers and server-only tables; not exposed through the Data API.';

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

create table public.workspaces (
  id uuid primary key default gen_random_uuid(),
  name text not null constraint workspaces_name_length
    check (char_length(btrim(name)) between 1 and 100),
  -- Filled from the name by private.workspaces_default_slug() when omitted.
  slug text not null constraint workspaces_slug_format
    check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) <= 63),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint workspaces_slug_key unique (slug)
);
comment on table public.workspaces is
  'A tenant. Inserting one makes created_by its owner (trigger workspaces_add_creator_as_owner).';

create table public.workspace_members (
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null constraint workspace_members_role_check
    check (role in ('owner', 'admin', 'member', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (workspace_id, user_id)
);
comment on table public.workspace_members is
  'Who belongs to a workspace and with which role; a workspace always keeps an owner.';

create table public.projects (
  id uuid primary key default gen_random_uuid(),
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  name text not null constraint projects_name_length
    check (char_length(btrim(name)) between 1 and 200),
  description text constraint projects_description_length
    check (char_length(description) <= 10000),
  archived_at timestamptz,
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  -- Filled from the project when omitted (private.inherit_workspace_id).
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  title text not null constraint tasks_title_length
    check (char_length(btrim(title)) between 1 and 500),
  description text constraint tasks_description_length
    check (char_length(description) <= 20000),
  status text not null default 'todo' constraint tasks_status_check
    check (status in ('todo', 'in_progress', 'blocked', 'done')),
  priority smallint not null default 2 constraint tasks_priority_range
    check (priority between 0 and 4),
  assignee_id uuid,
  due_date date,
  position double precision not null
    default (extract(epoch from clock_timestamp()) * 1000),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Optimistic concurrency: 1 on insert, +1 on every update (private.tasks_versioning).
  version integer not null default 1,
  -- Set when the status becomes done, cleared when it leaves done (private.tasks_versioning).
  completed_at timestamptz,
  search tsvector generated always as (
    to_tsvector('simple'::regconfig, title || ' ' || coalesce(description, ''))
  ) stored,
  constraint tasks_completed_iff_done check ((status = 'done') = (completed_at is not null)),
  -- An assignee is a member of the task's workspace; when they leave, the task is unassigned.
  constraint tasks_assignee_is_member foreign key (workspace_id, assignee_id)
    references public.workspace_members (workspace_id, user_id) on delete set null (assignee_id)
);

create table public.task_comments (
  id uuid primary key default gen_random_uuid(),
  task_id uuid not null references public.tasks (id) on delete cascade,
  -- Filled from the task when omitted (private.inherit_workspace_id).
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  author_id uuid default auth.uid() references auth.users (id) on delete set null,
  body text not null constraint task_comments_body_length
    check (char_length(btrim(body)) between 1 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.attachments (
  id uuid primary key default gen_random_uuid(),
  task_id uuid not null references public.tasks (id) on delete cascade,
  -- Filled from the task when omitted (private.inherit_workspace_id).
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  -- The object's name in the `attachments` bucket. Derived, so it always starts with the
  -- workspace id the storage policies key on and can never point into another workspace.
  storage_path text generated always as (
    workspace_id::text || '/' || task_id::text || '/' || id::text
  ) stored,
  filename text not null constraint attachments_filename_length
    check (char_length(btrim(filename)) between 1 and 255),
  content_type text not null constraint attachments_content_type_length
    check (char_length(content_type) between 1 and 255),
  size_bytes bigint not null constraint attachments_size_nonnegative check (size_bytes >= 0),
  uploaded_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- The audit trail. Written only by the trigger private.audit_task_change; API roles may read
-- (members of the workspace) but never write. task_id and actor_id have no foreign key on
-- purpose: the history outlives the task (its delete event) and the user.
create table public.task_events (
  id bigint generated always as identity primary key,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  task_id uuid not null,
  actor_id uuid,
  action text not null constraint task_events_action_check
    check (action in ('insert', 'update', 'delete')),
  -- insert: new_values = the row; delete: old_values = the row;
  -- update: only the fields that changed, old and new.
  old_values jsonb,
  new_values jsonb,
  created_at timestamptz not null default now()
);

-- ---------------------------------------------------------------------------------------------
-- Indexes: every foreign key, every column a policy or a list query filters or sorts on.
-- Lists are keyset-paginated on (<sort column>, id) per workspace or per project.
-- ---------------------------------------------------------------------------------------------

create index workspaces_created_by_idx on public.workspaces (created_by);

-- (workspace_id, user_id) is the primary key; this one serves "my workspaces" and the
-- membership helpers (user_id = auth.uid()).
create index workspace_members_user_id_idx on public.workspace_members (user_id, workspace_id);

create index projects_workspace_created_idx on public.projects (workspace_id, created_at, id);
create index projects_workspace_archived_idx on public.projects (workspace_id, archived_at);
create index projects_created_by_idx on public.projects (created_by);

create index tasks_workspace_created_idx on public.tasks (workspace_id, created_at, id);
create index tasks_workspace_updated_idx on public.tasks (workspace_id, updated_at, id);
create index tasks_workspace_due_idx on public.tasks (workspace_id, due_date, id);
create index tasks_workspace_priority_idx on public.tasks (workspace_id, priority, id);
create index tasks_project_created_idx on public.tasks (project_id, created_at, id);
create index tasks_project_updated_idx on public.tasks (project_id, updated_at, id);
create index tasks_project_due_idx on public.tasks (project_id, due_date, id);
create index tasks_project_priority_idx on public.tasks (project_id, priority, id);
create index tasks_workspace_status_idx on public.tasks (workspace_id, status);
-- Also the index of the foreign key tasks_assignee_is_member.
create index tasks_workspace_assignee_idx on public.tasks (workspace_id, assignee_id);
create index tasks_workspace_completed_idx on public.tasks (workspace_id, completed_at);
create index tasks_created_by_idx on public.tasks (created_by);
create index tasks_search_idx on public.tasks using gin (search);

create index task_comments_task_created_idx on public.task_comments (task_id, created_at, id);
create index task_comments_workspace_idx on public.task_comments (workspace_id);
create index task_comments_author_idx on public.task_comments (author_id);

create index attachments_task_created_idx on public.attachments (task_id, created_at, id);
create index attachments_workspace_idx on public.attachments (workspace_id);
create index attachments_uploaded_by_idx on public.attachments (uploaded_by);

create index task_events_workspace_created_idx on public.task_events (workspace_id, created_at);
create index task_events_task_created_idx on public.task_events (task_id, created_at);

-- ---------------------------------------------------------------------------------------------
-- Trigger functions
-- ---------------------------------------------------------------------------------------------

-- updated_at is the time of the last change, whatever the client sent.
create or replace function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end;
$$;

-- A slug from the name when none is given: "Acme Inc." -> "acme-inc-1a2b3c4d" (the id keeps it
-- unique without a lookup).
create or replace function private.workspaces_default_slug()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  base text;
begin
  if new.slug is null then
    base := pg_catalog.btrim(
      pg_catalog.left(
        pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.lower(new.name), '[^a-z0-9]+', '-', 'g'), '-'),
        40
      ),
      '-'
    );
    new.slug := coalesce(nullif(base, ''), 'workspace') || '-'
      || pg_catalog.left(pg_catalog.replace(new.id::text, '-', ''), 8);
  end if;
  return new;
end;
$$;

-- Creating a workspace makes its creator the owner, in the same statement. security definer:
-- nobody is a member yet, so no policy could allow this insert to the caller.
create or replace function private.workspaces_add_creator_as_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.created_by is not null then
    insert into public.workspace_members (workspace_id, user_id, role, created_at, updated_at)
    values (new.id, new.created_by, 'owner', new.created_at, new.created_at)
    on conflict (workspace_id, user_id) do nothing;
  end if;
  return null;
end;
$$;

-- A workspace always keeps an owner: refuse the demotion or removal of its last one, unless
-- the workspace itself is being deleted (then its rows go with it). Runs after the statement's
-- rows changed, so a statement that swaps owners passes; the lock on the workspace row
-- serializes concurrent demotions, so two owners cannot demote each other at the same time.
-- Raises check_violation (23514) with constraint name workspace_keeps_an_owner.
create or replace function private.workspace_members_keep_an_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform 1 from public.workspaces w where w.id = old.workspace_id for no key update;
  if not found then
    return null; -- the workspace is being deleted
  end if;
  if not exists (
    select 1 from public.workspace_members m
    where m.workspace_id = old.workspace_id and m.role = 'owner'
  ) then
    raise exception 'a workspace must keep at least one owner'
      using errcode = 'check_violation',
            constraint = 'workspace_keeps_an_owner',
            schema = 'public',
            table = 'workspace_members',
            detail = pg_catalog.format('workspace %s would have no owner left', old.workspace_id),
            hint = 'Make another member owner first, or delete the workspace.';
  end if;
  return null;
end;
$$;

-- Children take the workspace of their parent (tasks: the project; comments and attachments:
-- the task). security invoker on purpose: the parent is looked up under the caller's RLS, so
-- a parent the caller cannot see reads as missing (23503) and reveals nothing.
create or replace function private.inherit_workspace_id()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  parent_workspace uuid;
  parent_kind text;
  parent_id uuid;
begin
  if tg_table_name = 'tasks' then
    parent_kind := 'project';
    parent_id := new.project_id;
    select p.workspace_id into parent_workspace from public.projects p where p.id = parent_id;
  else
    parent_kind := 'task';
    parent_id := new.task_id;
    select t.workspace_id into parent_workspace from public.tasks t where t.id = parent_id;
  end if;

  if parent_workspace is null then
    raise exception '% % does not exist', parent_kind, parent_id
      using errcode = 'foreign_key_violation', schema = tg_table_schema, table = tg_table_name;
  end if;
  if new.workspace_id is null then
    new.workspace_id := parent_workspace;
  elsif new.workspace_id <> parent_workspace then
    raise exception '% % belongs to another workspace', parent_kind, parent_id
      using errcode = 'foreign_key_violation', schema = tg_table_schema, table = tg_table_name;
  end if;
  return new;
end;
$$;

-- version: 1 on insert, +1 on every update (whatever the client sent).
-- completed_at: set when the status becomes done (an insert may bring its own, for imports
-- and the seed), cleared when it leaves done, kept while it stays done.
create or replace function private.tasks_versioning()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.version := 1;
    if new.status = 'done' then
      new.completed_at := coalesce(new.completed_at, pg_catalog.now());
    else
      new.completed_at := null;
    end if;
  else
    new.version := old.version + 1;
    if new.status <> 'done' then
      new.completed_at := null;
    elsif old.status <> 'done' then
      new.completed_at := pg_catalog.now();
    else
      new.completed_at := old.completed_at;
    end if;
  end if;
  return new;
end;
$$;

-- One task_events row per insert, delete and update that changed a field (bookkeeping columns
-- excluded). actor_id is auth.uid(): null for maintenance work without a JWT (the seed).
-- Rows a workspace deletion cascades to are not recorded: their events go with the workspace.
create or replace function private.audit_task_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  old_row jsonb;
  new_row jsonb;
  old_values jsonb;
  new_values jsonb;
  row_workspace uuid;
  row_task uuid;
begin
  if tg_op = 'INSERT' then
    row_workspace := new.workspace_id;
    row_task := new.id;
  else
    row_workspace := old.workspace_id;
    row_task := old.id;
  end if;
  if tg_op <> 'INSERT'
     and not exists (select 1 from public.workspaces w where w.id = row_workspace) then
    return null;
  end if;

  if tg_op in ('UPDATE', 'DELETE') then
    old_row := pg_catalog.to_jsonb(old) - 'search';
  end if;
  if tg_op in ('UPDATE', 'INSERT') then
    new_row := pg_catalog.to_jsonb(new) - 'search';
  end if;

  if tg_op = 'UPDATE' then
    select pg_catalog.jsonb_object_agg(o.key, o.value), pg_catalog.jsonb_object_agg(n.key, n.value)
      into old_values, new_values
    from pg_catalog.jsonb_each(old_row) o
    join pg_catalog.jsonb_each(new_row) n on n.key = o.key
    where o.value is distinct from n.value
      and o.key not in ('updated_at', 'version');
    if old_values is null then
      return null; -- nothing but bookkeeping changed
    end if;
  else
    old_values := old_row;
    new_values := new_row;
  end if;

  insert into public.task_events (workspace_id, task_id, actor_id, action, old_values, new_values)
  values (row_workspace, row_task, auth.uid(), pg_catalog.lower(tg_op), old_values, new_values);
  return null;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Triggers (BEFORE triggers fire in name order)
-- ---------------------------------------------------------------------------------------------

create trigger workspaces_default_slug before insert on public.workspaces
  for each row execute function private.workspaces_default_slug();
create trigger workspaces_touch_updated_at before update on public.workspaces
  for each row execute function private.touch_updated_at();
create trigger workspaces_add_creator_as_owner after insert on public.workspaces
  for each row execute function private.workspaces_add_creator_as_owner();

create trigger workspace_members_touch_updated_at before update on public.workspace_members
  for each row execute function private.touch_updated_at();
create trigger workspace_members_keep_an_owner after update of role or delete
  on public.workspace_members
  for each row when (old.role = 'owner')
  execute function private.workspace_members_keep_an_owner();

create trigger projects_touch_updated_at before update on public.projects
  for each row execute function private.touch_updated_at();

create trigger tasks_inherit_workspace_id before insert or update of project_id on public.tasks
  for each row execute function private.inherit_workspace_id();
create trigger tasks_touch_updated_at before update on public.tasks
  for each row execute function private.touch_updated_at();
create trigger tasks_versioning before insert or update on public.tasks
  for each row execute function private.tasks_versioning();
create trigger tasks_audit after insert or update or delete on public.tasks
  for each row execute function private.audit_task_change();

create trigger task_comments_inherit_workspace_id before insert or update of task_id
  on public.task_comments
  for each row execute function private.inherit_workspace_id();
create trigger task_comments_touch_updated_at before update on public.task_comments
  for each row execute function private.touch_updated_at();

create trigger attachments_inherit_workspace_id before insert or update of task_id
  on public.attachments
  for each row execute function private.inherit_workspace_id();
create trigger attachments_touch_updated_at before update on public.attachments
  for each row execute function private.touch_updated_at();

-- ---------------------------------------------------------------------------------------------
-- Storage: the private bucket attachments live in (object policies in ..._rls.sql).
-- ---------------------------------------------------------------------------------------------

insert into storage.buckets (id, name, public)
values ('attachments', 'attachments', false)
on conflict (id) do nothing;
