-- A version per workspace that moves with every committed change to its tasks, for caches of
-- what is computed from tasks (the stats function). Bumped by the database in the writing
-- transaction itself, so no write path can forget it, a cascade (deleting a project or
-- unassigning a removed member) bumps it too, and it commits or rolls back with the change.
-- A reader reads it in the same query as its membership check (no extra round trip) and
-- trusts a cached entry only when the entry was computed under the same version.
--
-- Statement-level triggers: one upsert per statement and workspace, however many rows the
-- statement touched (a project delete cascading to thousands of tasks bumps once). Rows are
-- upserted in workspace order, so two statements never lock them in opposite orders.

create table if not exists private.workspace_task_versions (
  workspace_id uuid primary key,  -- no foreign key: a cascade from the workspace may bump it
  version bigint not null
);
alter table private.workspace_task_versions enable row level security;  -- no policy: definers only
revoke all on table private.workspace_task_versions from public, anon, authenticated;

create or replace function private.bump_task_versions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.workspace_task_versions as v (workspace_id, version)
      select distinct workspace_id, 1 from new_rows order by 1
      on conflict (workspace_id) do update set version = v.version + 1;
  elsif tg_op = 'UPDATE' then
    insert into private.workspace_task_versions as v (workspace_id, version)
      select workspace_id, 1
        from (select workspace_id from old_rows union select workspace_id from new_rows) w
       order by 1
      on conflict (workspace_id) do update set version = v.version + 1;
  else
    insert into private.workspace_task_versions as v (workspace_id, version)
      select distinct workspace_id, 1 from old_rows order by 1
      on conflict (workspace_id) do update set version = v.version + 1;
  end if;
  return null;
end;
$$;

drop trigger if exists tasks_bump_version_on_insert on public.tasks;
create trigger tasks_bump_version_on_insert after insert on public.tasks
  referencing new table as new_rows
  for each statement execute function private.bump_task_versions();

drop trigger if exists tasks_bump_version_on_update on public.tasks;
create trigger tasks_bump_version_on_update after update on public.tasks
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.bump_task_versions();

drop trigger if exists tasks_bump_version_on_delete on public.tasks;
create trigger tasks_bump_version_on_delete after delete on public.tasks
  referencing old table as old_rows
  for each statement execute function private.bump_task_versions();

-- A deleted workspace's version goes with it. (Fires after the foreign-key cascades, which
-- are AFTER triggers too and sort first by name, so nothing re-creates the row.)
create or replace function private.forget_task_version()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from private.workspace_task_versions where workspace_id = old.id;
  return null;
end;
$$;

drop trigger if exists workspaces_forget_task_version on public.workspaces;
create trigger workspaces_forget_task_version after delete on public.workspaces
  for each row execute function private.forget_task_version();

-- The caller's view: the version of a workspace they belong to, null otherwise.
create or replace function private.task_version(ws uuid)
returns bigint
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select v.version from private.workspace_task_versions v where v.workspace_id = ws), 0)
  where exists (
    select 1 from public.workspace_members m
    where m.workspace_id = ws and m.user_id = (select auth.uid())
  );
$$;

revoke all on function private.bump_task_versions() from public, anon, authenticated;
revoke all on function private.forget_task_version() from public, anon, authenticated;
revoke all on function private.task_version(uuid) from public, anon;
grant execute on function private.task_version(uuid) to authenticated, service_role;
