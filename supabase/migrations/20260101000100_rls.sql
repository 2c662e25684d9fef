-- Who may do what, enforced by the database whichever path a request takes (our functions,
-- PostgREST, Realtime). Policies follow Supabase's advice: `to authenticated`, `(select
-- auth.uid())`, membership checks through security definer helpers in `private`, no policy that
-- is always true, one permissive policy per table, role and action.
--
-- Roles in a workspace: owner > admin > member > viewer.
-- * Any member reads everything in their workspace; non-members and anon read nothing.
-- * Viewers only read. Members create and edit projects, tasks, comments and attachments; they
--   delete tasks they created, their own comments and attachments they uploaded. Admins and
--   owners do everything in the workspace except what is owners' alone: deleting the workspace
--   and granting or removing the owner role.
-- * Owners and admins manage members; admins cannot change or remove owners; anyone may leave;
--   the last owner cannot leave or be demoted (trigger, 23514 workspace_keeps_an_owner).

-- ---------------------------------------------------------------------------------------------
-- Membership helpers. security definer so they read workspace_members without its own RLS
-- (no recursion), stable so a statement evaluates them once per distinct argument.
-- Policies use the set-returning form `workspace_id in (select private.workspace_ids(...))`:
-- an uncorrelated subquery Postgres runs once per statement, not once per row.
-- ---------------------------------------------------------------------------------------------

-- The workspaces the caller belongs to, optionally only those where their role is in `roles`.
create or replace function private.workspace_ids(roles text[] default null)
returns setof uuid
language sql
stable
security definer
set search_path = ''
rows 10
as $$
  select m.workspace_id
  from public.workspace_members m
  where m.user_id = (select auth.uid())
    and (roles is null or m.role = any (roles));
$$;

create or replace function private.is_member(ws uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.workspace_members m
    where m.workspace_id = ws and m.user_id = (select auth.uid())
  );
$$;

create or replace function private.has_role(ws uuid, roles text[])
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.workspace_members m
    where m.workspace_id = ws and m.user_id = (select auth.uid()) and m.role = any (roles)
  );
$$;

-- The caller's role in a workspace, or null when they are not a member.
create or replace function private.member_role(ws uuid)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select m.role from public.workspace_members m
  where m.workspace_id = ws and m.user_id = (select auth.uid());
$$;

-- True while a workspace has no member at all: only between its INSERT and the end of that
-- statement, when the trigger adds the creator as owner. Lets `insert ... returning` read the
-- new row back under RLS (Postgres checks the SELECT policy before AFTER triggers run).
create or replace function private.workspace_has_members(ws uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from public.workspace_members m where m.workspace_id = ws);
$$;

-- The workspace an object of the attachments bucket belongs to: the first folder of its name,
-- `(storage.foldername(name))[1]::uuid`, or null when that is not a uuid (a bad name must
-- never make a policy raise for the whole query).
create or replace function private.workspace_id_of_object(name text)
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  folder text := (storage.foldername(name))[1];
begin
  if folder ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return folder::uuid;
  end if;
  return null;
end;
$$;

-- The user id of an email, for adding members by email. Reveals whether an address has an
-- account, so it answers only callers who manage members somewhere (owner or admin of at least
-- one workspace); anyone else, and unknown or deleted accounts, get null.
create or replace function private.user_id_by_email(email text)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.id
  from auth.users u
  where u.email = pg_catalog.lower(pg_catalog.btrim(user_id_by_email.email))
    and u.deleted_at is null
    and exists (
      select 1 from public.workspace_members m
      where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')
    )
  limit 1;
$$;

-- The members of a workspace with their emails (auth.users is not readable by API roles);
-- empty unless the caller is a member of that workspace.
create or replace function private.member_directory(ws uuid)
returns table (user_id uuid, email text, role text, created_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select m.user_id, u.email::text, m.role, m.created_at
  from public.workspace_members m
  join auth.users u on u.id = m.user_id
  where m.workspace_id = ws
    and exists (
      select 1 from public.workspace_members me
      where me.workspace_id = ws and me.user_id = (select auth.uid())
    )
  order by m.created_at, m.user_id;
$$;

-- ---------------------------------------------------------------------------------------------
-- Privileges. RLS decides rows; grants decide what kind of statement is possible at all.
-- ---------------------------------------------------------------------------------------------

grant usage on schema private to authenticated, service_role;
-- Functions are executable by PUBLIC by default: nothing here is, unless granted below.
revoke all on all functions in schema private from public, anon;
grant execute on function
  private.workspace_ids(text[]),
  private.is_member(uuid),
  private.has_role(uuid, text[]),
  private.member_role(uuid),
  private.workspace_has_members(uuid),
  private.workspace_id_of_object(text),
  private.user_id_by_email(text),
  private.member_directory(uuid)
  to authenticated, service_role;

-- anon never needs these tables (every route needs a user); TRUNCATE, REFERENCES and TRIGGER
-- are not for API users at all (TRUNCATE would bypass RLS).
revoke all on table
  public.workspaces, public.workspace_members, public.projects, public.tasks,
  public.task_comments, public.attachments, public.task_events
  from anon;
revoke truncate, references, trigger on table
  public.workspaces, public.workspace_members, public.projects, public.tasks,
  public.task_comments, public.attachments, public.task_events
  from authenticated;

-- UPDATE only the columns a user edits: ids, workspace_id, authorship, version, completed_at
-- and timestamps are the database's (an UPDATE naming them is 42501).
revoke update on table
  public.workspaces, public.workspace_members, public.projects, public.tasks,
  public.task_comments, public.attachments, public.task_events
  from authenticated;
grant update (name, slug) on public.workspaces to authenticated;
grant update (role) on public.workspace_members to authenticated;
grant update (name, description, archived_at) on public.projects to authenticated;
grant update (project_id, title, description, status, priority, assignee_id, due_date, position)
  on public.tasks to authenticated;
grant update (body) on public.task_comments to authenticated;
grant update (filename, content_type, size_bytes) on public.attachments to authenticated;

-- The audit trail is read-only for API users.
revoke insert, delete on public.task_events from authenticated;

-- ---------------------------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------------------------

alter table public.workspaces enable row level security;
alter table public.workspace_members enable row level security;
alter table public.projects enable row level security;
alter table public.tasks enable row level security;
alter table public.task_comments enable row level security;
alter table public.attachments enable row level security;
alter table public.task_events enable row level security;

-- workspaces ----------------------------------------------------------------------------------

create policy "members read their workspaces"
  on public.workspaces for select to authenticated
  using (
    id in (select private.workspace_ids())
    -- the creator, in the instant before the trigger makes them owner (insert ... returning)
    or (created_by = (select auth.uid()) and not private.workspace_has_members(id))
  );

create policy "users create workspaces as themselves"
  on public.workspaces for insert to authenticated
  with check (created_by = (select auth.uid()));

create policy "admins update their workspace"
  on public.workspaces for update to authenticated
  using (id in (select private.workspace_ids('{owner,admin}')))
  with check (id in (select private.workspace_ids('{owner,admin}')));

create policy "owners delete their workspace"
  on public.workspaces for delete to authenticated
  using (id in (select private.workspace_ids('{owner}')));

-- workspace_members ---------------------------------------------------------------------------
-- Owners manage every membership; admins every one that is not, and does not become, owner.

create policy "members read the roster"
  on public.workspace_members for select to authenticated
  using (workspace_id in (select private.workspace_ids()));

create policy "owners and admins add members"
  on public.workspace_members for insert to authenticated
  with check (
    workspace_id in (select private.workspace_ids('{owner}'))
    or (role <> 'owner' and workspace_id in (select private.workspace_ids('{admin}')))
  );

create policy "owners and admins change roles"
  on public.workspace_members for update to authenticated
  using (
    workspace_id in (select private.workspace_ids('{owner}'))
    or (role <> 'owner' and workspace_id in (select private.workspace_ids('{admin}')))
  )
  with check (
    workspace_id in (select private.workspace_ids('{owner}'))
    or (role <> 'owner' and workspace_id in (select private.workspace_ids('{admin}')))
  );

create policy "owners and admins remove members, anyone leaves"
  on public.workspace_members for delete to authenticated
  using (
    user_id = (select auth.uid())
    or workspace_id in (select private.workspace_ids('{owner}'))
    or (role <> 'owner' and workspace_id in (select private.workspace_ids('{admin}')))
  );

-- projects ------------------------------------------------------------------------------------

create policy "members read projects"
  on public.projects for select to authenticated
  using (workspace_id in (select private.workspace_ids()));

create policy "members create projects"
  on public.projects for insert to authenticated
  with check (
    workspace_id in (select private.workspace_ids('{owner,admin,member}'))
    and created_by = (select auth.uid())
  );

create policy "members edit projects"
  on public.projects for update to authenticated
  using (workspace_id in (select private.workspace_ids('{owner,admin,member}')))
  with check (workspace_id in (select private.workspace_ids('{owner,admin,member}')));

create policy "admins delete projects"
  on public.projects for delete to authenticated
  using (workspace_id in (select private.workspace_ids('{owner,admin}')));

-- tasks ---------------------------------------------------------------------------------------

create policy "members read tasks"
  on public.tasks for select to authenticated
  using (workspace_id in (select private.workspace_ids()));

create policy "members create tasks"
  on public.tasks for insert to authenticated
  with check (
    workspace_id in (select private.workspace_ids('{owner,admin,member}'))
    and created_by = (select auth.uid())
  );

create policy "members edit tasks"
  on public.tasks for update to authenticated
  using (workspace_id in (select private.workspace_ids('{owner,admin,member}')))
  with check (workspace_id in (select private.workspace_ids('{owner,admin,member}')));

create policy "creators and admins delete tasks"
  on public.tasks for delete to authenticated
  using (
    workspace_id in (select private.workspace_ids('{owner,admin}'))
    or (
      created_by = (select auth.uid())
      and workspace_id in (select private.workspace_ids('{member}'))
    )
  );

-- task_comments -------------------------------------------------------------------------------

create policy "members read comments"
  on public.task_comments for select to authenticated
  using (workspace_id in (select private.workspace_ids()));

create policy "members comment"
  on public.task_comments for insert to authenticated
  with check (
    workspace_id in (select private.workspace_ids('{owner,admin,member}'))
    and author_id = (select auth.uid())
  );

create policy "authors edit their comments"
  on public.task_comments for update to authenticated
  using (
    author_id = (select auth.uid())
    and workspace_id in (select private.workspace_ids('{owner,admin,member}'))
  )
  with check (
    author_id = (select auth.uid())
    and workspace_id in (select private.workspace_ids('{owner,admin,member}'))
  );

create policy "authors and admins delete comments"
  on public.task_comments for delete to authenticated
  using (
    workspace_id in (select private.workspace_ids('{owner,admin}'))
    or (
      author_id = (select auth.uid())
      and workspace_id in (select private.workspace_ids('{member}'))
    )
  );

-- attachments ---------------------------------------------------------------------------------

create policy "members read attachments"
  on public.attachments for select to authenticated
  using (workspace_id in (select private.workspace_ids()));

create policy "members attach files"
  on public.attachments for insert to authenticated
  with check (
    workspace_id in (select private.workspace_ids('{owner,admin,member}'))
    and uploaded_by = (select auth.uid())
  );

create policy "members edit attachments"
  on public.attachments for update to authenticated
  using (workspace_id in (select private.workspace_ids('{owner,admin,member}')))
  with check (workspace_id in (select private.workspace_ids('{owner,admin,member}')));

create policy "uploaders and admins delete attachments"
  on public.attachments for delete to authenticated
  using (
    workspace_id in (select private.workspace_ids('{owner,admin}'))
    or (
      uploaded_by = (select auth.uid())
      and workspace_id in (select private.workspace_ids('{member}'))
    )
  );

-- task_events: read-only (no write policy, and no write privilege) -----------------------------

create policy "members read the audit trail"
  on public.task_events for select to authenticated
  using (workspace_id in (select private.workspace_ids()));

-- storage.objects in the attachments bucket: the first folder is the workspace id -------------
-- All members read; members, admins and owners write. Scoped to the bucket, so other buckets'
-- policies are untouched.

create policy "attachments: members read objects"
  on storage.objects for select to authenticated
  using (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name) in (select private.workspace_ids())
  );

create policy "attachments: members upload objects"
  on storage.objects for insert to authenticated
  with check (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name)
      in (select private.workspace_ids('{owner,admin,member}'))
  );

create policy "attachments: members replace objects"
  on storage.objects for update to authenticated
  using (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name)
      in (select private.workspace_ids('{owner,admin,member}'))
  )
  with check (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name)
      in (select private.workspace_ids('{owner,admin,member}'))
  );

create policy "attachments: members delete objects"
  on storage.objects for delete to authenticated
  using (
    bucket_id = 'attachments'
    and private.workspace_id_of_object(name)
      in (select private.workspace_ids('{owner,admin,member}'))
  );
