"""Events out, part one: enqueue a message in the handler's own transaction.

`request.emit(topic, payload, key=...)` stores one row per sink in `private.outbox` through
`private.outbox_enqueue`, sent in the pipeline that carries the transaction's COMMIT
(`Transaction.execute_with_commit`): the message exists if and only if the transaction
commits, and storing it costs no round trip to Postgres of its own. `shared.dispatch`
delivers it after commit.

A `single_statement=True` route commits with its one statement, before a handler could emit
after it; emitting there makes the route's transaction explicit (`atomic()`), which must
happen before its first statement (calling `emit` later is refused, loudly, in development).
Sinks come from the settings: the Upstash channel named by the topic (`OUTBOX_PUBLISH`,
on by default) and the signed webhook `OUTBOX_WEBHOOK_URL` when set. With telemetry on, each
message keeps the emitting span's `traceparent` (`trace_context`) for its delivery to link to.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from shared.db import Transaction
from shared.envelope import dumps
from shared.settings import Settings
from shared.tracecontext import current_traceparent

_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
ENQUEUE = "select private.outbox_enqueue(%s::uuid, %s, %s, %s::jsonb, %s, %s, %s, %s)"


def sinks(settings: Settings, topic: str) -> list[tuple[str, str]]:
    """(sink, target) pairs a message of this topic goes to."""
    out: list[tuple[str, str]] = []
    if settings.outbox_publish:
        out.append(("publish", topic))
    if settings.outbox_webhook_url:
        out.append(("webhook", settings.outbox_webhook_url))
    return out


def enqueue(
    tx: Transaction, settings: Settings, topic: str, payload: Any, key: str | None = None
) -> str | None:
    """Queue a message with the transaction's COMMIT; its stable id, or None without sinks."""
    if not _TOPIC.fullmatch(topic):
        raise ValueError(f"emit: a topic is 1-200 of [A-Za-z0-9._:-], got {topic!r}")
    if key is not None and not 1 <= len(key) <= 200:
        raise ValueError("emit: a key is 1-200 characters")
    if tx.read_only:
        raise RuntimeError("emit() is for writes: a GET or HEAD has no transaction to commit")
    tx.atomic()  # a single-statement route: one explicit transaction (refused after a write)
    targets = sinks(settings, topic)
    if not targets:
        return None
    message_id = str(uuid.uuid4())
    tx.execute_with_commit(
        ENQUEUE,
        (
            message_id,
            topic,
            key,
            dumps(payload),
            [sink for sink, _ in targets],
            [target for _, target in targets],
            settings.outbox_max_attempts,
            # The emitting span (telemetry on): the delivery's span links to it.
            current_traceparent(),
        ),
    )
    return message_id
