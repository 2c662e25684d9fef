-- Transactional outbox: messages a handler emits, stored in the handler's own transaction (so
-- a message exists if and only if that transaction commits) and delivered after commit by the
-- dispatcher (shared/dispatch.py), at least once, with a stable message id.
--
-- One row per message and sink: an Upstash channel (`publish`) or a signed webhook URL
-- (`webhook`), each with its own attempts, backoff and dead-letter state. Server-only: no API
-- role but service_role may read or change it (RLS on, no policy; service_role bypasses RLS),
-- and users enqueue only through private.outbox_enqueue (security definer).

create schema if not exists private;

create table if not exists private.outbox (
  seq             bigint generated always as identity primary key,
  message_id      uuid        not null,
  topic           text        not null check (length(topic) between 1 and 200),
  key             text        check (length(key) between 1 and 200),  -- ordering key
  payload         jsonb       not null,
  sink            text        not null check (sink in ('publish', 'webhook')),
  target          text        not null check (length(target) between 1 and 2000),
  status          text        not null default 'pending'
                              check (status in ('pending', 'delivered', 'dead')),
  attempts        integer     not null default 0,
  max_attempts    integer     not null check (max_attempts > 0),
  next_attempt_at timestamptz not null default now(),
  lease_until     timestamptz,                -- a dispatcher holds it until then
  last_error      text,
  created_at      timestamptz not null default now(),
  delivered_at    timestamptz,
  unique (message_id, sink, target)
);

-- The dispatcher's claim: due pending rows in order.
create index if not exists outbox_pending_idx on private.outbox (seq)
  where status = 'pending';
-- Ordering per key: "is an earlier message of this key still pending for this sink?"
create index if not exists outbox_key_idx on private.outbox (key, sink, target, seq)
  where status = 'pending' and key is not null;
-- Trimming old delivered and dead rows, and the dead letters an operator looks at.
create index if not exists outbox_status_created_idx on private.outbox (status, created_at);

alter table private.outbox enable row level security;
revoke all on private.outbox from public, anon, authenticated;
grant select, update, delete on private.outbox to service_role;

-- Enqueue one message for its sinks (parallel arrays). Called by request.emit() inside the
-- caller's transaction, riding in its COMMIT pipeline; rolls back with it.
create or replace function private.outbox_enqueue(
  p_message_id uuid, p_topic text, p_key text, p_payload jsonb,
  p_sinks text[], p_targets text[], p_max_attempts integer
)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.outbox (message_id, topic, key, payload, sink, target, max_attempts)
  select p_message_id, p_topic, p_key, p_payload, s.sink, s.target, p_max_attempts
    from unnest(p_sinks, p_targets) as s (sink, target);
$$;

revoke all on function private.outbox_enqueue(uuid, text, text, jsonb, text[], text[], integer)
  from public;
grant execute on function private.outbox_enqueue(uuid, text, text, jsonb, text[], text[], integer)
  to anon, authenticated, service_role;
