-- Removing a member races with that member's writes. RLS checks membership with the
-- statement's snapshot, so a write that started just before a removal could still commit
-- after it. This guard closes the gap: every direct write to workspace content share-locks
-- the writer's membership row (re-read at its latest version). Either the write takes the
-- lock first and the removal (or demotion) waits until the write commits, or the removal
-- commits first and the write fails with 42501. No write lands after a removal commits.

create or replace function private.guard_writer_membership()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_workspace uuid := case when tg_op = 'DELETE' then old.workspace_id else new.workspace_id end;
  v_user uuid := (select auth.uid());
begin
  -- Server-side jobs (no caller) and cascades from a parent's delete are not a member's write.
  if v_user is null or pg_trigger_depth() > 1 then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  perform 1
     from public.workspace_members m
    where m.workspace_id = v_workspace
      and m.user_id = v_user
      and m.role in ('owner', 'admin', 'member')
      for share;
  if not found then
    raise exception 'not a member who may write in this workspace'
      using errcode = 'insufficient_privilege';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end;
$$;

revoke all on function private.guard_writer_membership() from public;

drop trigger if exists projects_writer_is_member on public.projects;
create trigger projects_writer_is_member before insert or update or delete on public.projects
  for each row execute function private.guard_writer_membership();

drop trigger if exists tasks_writer_is_member on public.tasks;
create trigger tasks_writer_is_member before insert or update or delete on public.tasks
  for each row execute function private.guard_writer_membership();

drop trigger if exists task_comments_writer_is_member on public.task_comments;
create trigger task_comments_writer_is_member before insert or update or delete on public.task_comments
  for each row execute function private.guard_writer_membership();

drop trigger if exists attachments_writer_is_member on public.attachments;
create trigger attachments_writer_is_member before insert or update or delete on public.attachments
  for each row execute function private.guard_writer_membership();
