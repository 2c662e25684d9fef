-- Realtime, both ways Supabase offers it:
-- * Postgres Changes: tasks, projects, task_comments and workspace_members are in the
--   supabase_realtime publication; Realtime applies their SELECT policies per subscriber.
-- * Broadcast from the database: triggers send every change to the private topic
--   `workspace:<workspace id>` through realtime.broadcast_changes; a policy on
--   realtime.messages lets only that workspace's members join it.

-- ---------------------------------------------------------------------------------------------
-- Publication. Guarded: re-running (or a project whose publication is FOR ALL TABLES) is a
-- no-op; a database without the publication gets a notice, not an error.
-- ---------------------------------------------------------------------------------------------

do $$
declare
  table_name text;
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    raise notice 'publication supabase_realtime does not exist: Postgres Changes not enabled';
    return;
  end if;
  if (select puballtables from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    return;
  end if;
  foreach table_name in array array['tasks', 'projects', 'task_comments', 'workspace_members']
  loop
    if not exists (
      select 1 from pg_catalog.pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = table_name
    ) then
      execute pg_catalog.format(
        'alter publication supabase_realtime add table public.%I', table_name
      );
    end if;
  end loop;
end
$$;

-- Subscribers get the old record of updates and deletes (and can filter deletes by
-- workspace_id), not only its primary key.
alter table public.tasks replica identity full;
alter table public.projects replica identity full;
alter table public.task_comments replica identity full;
alter table public.workspace_members replica identity full;

-- ---------------------------------------------------------------------------------------------
-- Broadcast triggers
-- ---------------------------------------------------------------------------------------------

-- Sends the change to `workspace:<id>`; the payload is Supabase's
-- {record, old_record, operation, table, schema}. Rows a workspace deletion cascades to are
-- not sent one by one: the workspace's own DELETE is the message. security definer so the
-- message is written whatever the caller may write (realtime.send is too, on Supabase).
create or replace function private.broadcast_workspace_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  workspace uuid;
begin
  if tg_table_name = 'workspaces' then
    if tg_op = 'DELETE' then workspace := old.id; else workspace := new.id; end if;
  else
    if tg_op = 'DELETE' then workspace := old.workspace_id; else workspace := new.workspace_id; end if;
    if tg_op <> 'INSERT'
       and not exists (select 1 from public.workspaces w where w.id = workspace) then
      return null;
    end if;
  end if;
  perform realtime.broadcast_changes(
    'workspace:' || workspace::text, tg_op, tg_op, tg_table_name, tg_table_schema, new, old
  );
  return null;
end;
$$;
revoke all on function private.broadcast_workspace_change() from public, anon;

create trigger workspaces_broadcast after update or delete on public.workspaces
  for each row execute function private.broadcast_workspace_change();
create trigger workspace_members_broadcast after insert or update or delete
  on public.workspace_members
  for each row execute function private.broadcast_workspace_change();
create trigger projects_broadcast after insert or update or delete on public.projects
  for each row execute function private.broadcast_workspace_change();
create trigger tasks_broadcast after insert or update or delete on public.tasks
  for each row execute function private.broadcast_workspace_change();
create trigger task_comments_broadcast after insert or update or delete on public.task_comments
  for each row execute function private.broadcast_workspace_change();

-- ---------------------------------------------------------------------------------------------
-- Who receives a workspace's broadcasts: its members. Realtime authorizes a join by setting
-- realtime.topic and selecting `where topic = <topic> and extension = 'broadcast'` as the user.
-- ---------------------------------------------------------------------------------------------

-- 'workspace:<uuid>' -> the uuid; anything else -> null (never an error).
create or replace function private.workspace_id_of_topic(topic text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case
    when topic ~* '^workspace:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
      then pg_catalog.substr(topic, 11)::uuid
  end;
$$;
revoke all on function private.workspace_id_of_topic(text) from public, anon;
grant execute on function private.workspace_id_of_topic(text) to authenticated, service_role;

create policy "workspace members receive their workspace's broadcasts"
  on realtime.messages for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and realtime.messages.topic = (select realtime.topic())
    and (select realtime.topic()) like 'workspace:%'
    and (select private.workspace_id_of_topic(realtime.topic()))
      in (select private.workspace_ids())
  );
