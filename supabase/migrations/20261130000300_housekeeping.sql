-- Scheduled housekeeping (functions/housekeeping): bounded batches, service role only.

-- Expired idempotency keys, at most p_limit per call (the caller loops, one short transaction
-- per batch, so no run holds many row locks or one long transaction).
create or replace function private.idempotency_expire(p_limit integer)
returns integer
language sql
security definer
set search_path = ''
as $$
  with doomed as (
    select k.caller, k.function_name, k.route, k.key
      from private.idempotency_keys k
     where k.expires_at < now()
     order by k.expires_at
     limit p_limit
       for update skip locked
  ), gone as (
    delete from private.idempotency_keys k
     using doomed d
     where (k.caller, k.function_name, k.route, k.key) = (d.caller, d.function_name, d.route, d.key)
    returning 1
  )
  select count(*)::integer from gone;
$$;

-- Rows that grow with every write and that nobody reads once old: broadcast messages older
-- than p_realtime_days (Supabase drops its own daily partitions after a few days; the
-- bootstrap's plain table would grow without bound) and outbox rows delivered more than
-- p_outbox_days ago (dead letters stay three times as long, for an operator to inspect).
-- public.task_events is the product's audit trail and is kept (see the README).
create or replace function private.trim_history(
  p_limit integer, p_realtime_days integer, p_outbox_days integer
)
returns table (realtime_messages integer, outbox integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_realtime integer;
  v_outbox integer;
begin
  with doomed as (
    select m.id from realtime.messages m
     where m.inserted_at < now() - make_interval(days => p_realtime_days)
     limit p_limit
  ), gone as (
    delete from realtime.messages m using doomed d where m.id = d.id returning 1
  )
  select count(*)::integer into v_realtime from gone;

  with doomed as (
    select o.seq from private.outbox o
     where (o.status = 'delivered'
            and o.created_at < now() - make_interval(days => p_outbox_days))
        or (o.status = 'dead'
            and o.created_at < now() - make_interval(days => 3 * p_outbox_days))
     limit p_limit
  ), gone as (
    delete from private.outbox o using doomed d where o.seq = d.seq returning 1
  )
  select count(*)::integer into v_outbox from gone;
  return query select v_realtime, v_outbox;
end;
$$;

revoke all on function private.idempotency_expire(integer) from public;
revoke all on function private.trim_history(integer, integer, integer) from public;
grant execute on function private.idempotency_expire(integer) to service_role;
grant execute on function private.trim_history(integer, integer, integer) to service_role;
