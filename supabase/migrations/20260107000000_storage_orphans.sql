-- Files whose attachment row went away with its task, project or workspace (a cascade) are
-- queued here, because Postgres cannot call Storage. `POST /attachments/purge` (service role,
-- run on a schedule) removes them from Storage and empties the queue. A direct
-- `DELETE /attachments/{id}` removes its own file and queues nothing.

create table if not exists private.storage_orphans (
  bucket_id text        not null,
  name      text        not null,
  queued_at timestamptz not null default now(),
  primary key (bucket_id, name)
);

revoke all on private.storage_orphans from public, anon, authenticated;
grant select, update, delete on private.storage_orphans to service_role;  -- update: for FOR UPDATE locks

create or replace function private.queue_storage_orphan()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- A cascade runs this BEFORE trigger at depth 2 (AFTER triggers of a cascade run at depth 1).
  if pg_trigger_depth() > 1 then  -- the row went with a parent: nobody removed its file
    insert into private.storage_orphans (bucket_id, name)
    values ('attachments', old.storage_path)
    on conflict do nothing;
  end if;
  return old;
end;
$$;

revoke all on function private.queue_storage_orphan() from public;

drop trigger if exists attachments_queue_orphan on public.attachments;
create trigger attachments_queue_orphan before delete on public.attachments
  for each row execute function private.queue_storage_orphan();
