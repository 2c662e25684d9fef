-- The outbox carries the emitting request's trace context (issue 24): the `traceparent` of the
-- span that emitted a message, stored with it so the dispatcher's delivery span links to the
-- request that caused it, however much later it runs. Null when telemetry is off.

alter table private.outbox add column if not exists trace_context text
  check (length(trace_context) <= 512);

-- outbox_enqueue takes it as an eighth argument, defaulting to null, so a caller passing seven
-- (an older runtime during a rollout, the bench's drain) still enqueues.
drop function if exists private.outbox_enqueue(uuid, text, text, jsonb, text[], text[], integer);

create or replace function private.outbox_enqueue(
  p_message_id uuid, p_topic text, p_key text, p_payload jsonb,
  p_sinks text[], p_targets text[], p_max_attempts integer, p_trace_context text default null
)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.outbox
    (message_id, topic, key, payload, sink, target, max_attempts, trace_context)
  select p_message_id, p_topic, p_key, p_payload, s.sink, s.target, p_max_attempts,
         p_trace_context
    from unnest(p_sinks, p_targets) as s (sink, target);
$$;

revoke all on function
  private.outbox_enqueue(uuid, text, text, jsonb, text[], text[], integer, text) from public;
grant execute on function
  private.outbox_enqueue(uuid, text, text, jsonb, text[], text[], integer, text)
  to anon, authenticated, service_role;
