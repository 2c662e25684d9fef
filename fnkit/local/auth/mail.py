"""The local inbox: the emails Supabase Auth would send, kept as JSON files and printed.

`make dev` has no mail server (the Supabase CLI runs Inbucket for this); every message the
local Auth sends (confirmation, invite, magic link, recovery, email change) is written to
`<data_dir>/inbox/<time>-<id>.json` with the recipient, subject, kind, the link to click, the
hashed token in that link and the 6-digit OTP, and announced on stdout in one line, so a
developer sees the link where `make dev` prints its log. Tests read `messages(to)`.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from pathlib import Path
from typing import Any

__all__ = ["Inbox"]


class Inbox:
    """Messages as JSON files in one directory, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def deliver(
        self, *, to: str, subject: str, kind: str, link: str, token: str, otp: str
    ) -> dict[str, Any]:
        moment = dt.datetime.now(dt.UTC)
        message = {
            "id": str(uuid.uuid4()),
            "to": to,
            "subject": subject,
            "kind": kind,
            "link": link,
            "token": token,
            "otp": otp,
            "created_at": moment.isoformat().replace("+00:00", "Z"),
        }
        name = f"{moment.strftime('%Y%m%dT%H%M%S%f')}-{message['id']}.json"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / name).write_text(json.dumps(message, indent=2), encoding="utf-8")
        print(f"[auth mail] {kind} to {to}: {link} (code {otp})", flush=True)
        return message

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Every message (to one address, case-insensitively, when given), oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            message: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if to is None or str(message.get("to", "")).lower() == to.lower():
                found.append(message)
        return found

    def clear(self) -> None:
        with self._lock:
            for path in self.directory.glob("*.json"):
                path.unlink(missing_ok=True)
