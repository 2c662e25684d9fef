"""attachments: files on tasks. The row lives in Postgres, the bytes in Supabase Storage.

The client never uploads through this function: `POST` records the attachment and answers a
signed upload URL for the object `<workspace_id>/<task_id>/<attachment_id>` in the private
`attachments` bucket (the database derives that path, so it cannot point elsewhere); the
client PUTs the file there. `GET /{id}` answers a download URL valid for a minute.

Limits are settings: `ATTACHMENT_MAX_BYTES` and `ATTACHMENT_CONTENT_TYPES` (comma-separated,
`image/*` style wildcards allowed; empty means `DEFAULT_CONTENT_TYPES`). A declared size over
the limit is 422 VALIDATION_FAILED at `["body", "size"]`, not 413: the request itself is
small, it is a field value that breaks a rule. Configure the same limits on the bucket
(`file_size_limit`, `allowed_mime_types`) so Storage enforces them on the upload itself.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator

from shared import (
    READ,
    WRITE,
    App,
    Forbidden,
    Model,
    NotFound,
    Request,
    Result,
    Schema,
    ValidationFailed,
    supabase_admin,
)
from shared.pagination import decode_cursor, page

app = App("attachments", title="Attachments", description="Files attached to tasks.")

BUCKET = "attachments"
DOWNLOAD_URL_TTL_S = 60
PURGE_BATCH = 100  # object names per Storage call
WRITERS = {"owner", "admin", "member"}
# Documents, images, text and archives people attach to tasks. Not SVG or HTML: served from
# Storage's origin they could run scripts.
DEFAULT_CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
)
_TOKEN = r"[a-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\]*\"))*")
_COLUMNS = (
    "id, task_id, workspace_id, storage_path, filename, content_type, size_bytes,"
    " uploaded_by, created_at, updated_at"
)

# ---- models ---------------------------------------------------------------------------


class AttachmentIn(Model):
    task_id: UUID
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=255)
    size: int = Field(ge=0, strict=True)

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """A name, not a path: no separators, no control or format characters."""
        if "/" in value or "\\" in value:
            raise ValueError("must not contain path separators")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
            raise ValueError("must not contain control characters")
        if value in (".", ".."):
            raise ValueError("must be a file name")
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        value = value.lower()
        if not _CONTENT_TYPE.fullmatch(value):
            raise ValueError("must be a media type such as application/pdf")
        return value


class ListQuery(Model):
    task_id: UUID
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=1024)


class AttachmentPath(Model):
    id: UUID


class Attachment(Schema):
    id: UUID
    task_id: UUID
    workspace_id: UUID
    storage_path: str
    filename: str
    content_type: str
    size_bytes: int
    uploaded_by: UUID | None
    created_at: datetime
    updated_at: datetime


class Upload(Schema):
    url: str
    token: str
    path: str


class NewAttachment(Attachment):
    upload: Upload


class Download(Schema):
    url: str
    expires_in: int


class AttachmentWithDownload(Attachment):
    download: Download


# ---- routes and handlers --------------------------------------------------------------


@app.post("/", response=NewAttachment, status=201, rate=WRITE)
def create_attachment(request: Request, body: AttachmentIn) -> Result:
    """Record an attachment and answer a signed URL to upload its file to.

    The row is inserted first (the database makes its storage path), then Storage signs the
    upload. Should Storage fail, the error rolls the transaction back: no row without a way
    to upload its file.
    """
    _check_limits(request, body)
    task = request.db.one(
        "select private.member_role(t.workspace_id) as role from public.tasks t where t.id = %s",
        (body.task_id,),
    )
    if task is None:
        raise NotFound("Task not found")
    if task["role"] not in WRITERS:
        raise Forbidden("Viewers may not attach files")
    row = request.db.one(
        "insert into public.attachments (task_id, filename, content_type, size_bytes)"
        f" values (%s, %s, %s, %s) returning {_COLUMNS}",
        (body.task_id, body.filename, body.content_type, body.size),
    )
    assert row is not None
    upload = supabase_admin.create_signed_upload_url(request.settings, BUCKET, row["storage_path"])
    return Result({**row, "upload": upload}, status=201)


@app.get("/", response=list[Attachment], rate=READ)
def list_attachments(request: Request, query: ListQuery) -> Result:
    """A task's attachments, oldest first, keyset-paginated (`limit` 1 to 100, default 50)."""
    if request.db.one("select 1 from public.tasks where id = %s", (query.task_id,)) is None:
        raise NotFound("Task not found")
    scope = {"task_id": str(query.task_id)}
    after: list[Any] = ["-infinity", str(UUID(int=0))]
    if query.cursor:
        after = decode_cursor(query.cursor, scope, (str, str))
    rows = request.db.all(
        f"select {_COLUMNS} from public.attachments"
        " where task_id = %s and (created_at, id) > (%s::timestamptz, %s::uuid)"
        " order by created_at, id limit %s",
        (query.task_id, after[0], after[1], query.limit + 1),
    )
    items, pagination = page(
        rows, query.limit, scope, lambda row: [row["created_at"].isoformat(), str(row["id"])]
    )
    return Result(items, pagination=pagination)


@app.get("/{id}", response=AttachmentWithDownload, rate=READ)
def get_attachment(request: Request, path: AttachmentPath) -> dict[str, Any]:
    """One attachment with a download URL valid for DOWNLOAD_URL_TTL_S seconds."""
    row = request.db.one(f"select {_COLUMNS} from public.attachments where id = %s", (path.id,))
    if row is None:
        raise NotFound("Attachment not found")
    url = supabase_admin.create_signed_url(
        request.settings, BUCKET, row["storage_path"], DOWNLOAD_URL_TTL_S
    )
    return {**row, "download": {"url": url, "expires_in": DOWNLOAD_URL_TTL_S}}


@app.delete("/{id}", status=204, rate=WRITE)
def delete_attachment(request: Request, path: AttachmentPath) -> Result:
    """Delete the attachment: its uploader (member or above) or an owner or admin.

    Order: the row is deleted inside the transaction, then the object is removed, then the
    transaction commits. Storage failing rolls the row back, so nothing is lost. The only gap
    is a commit failing after the removal: the row stays without its file, visible, and a
    second DELETE finishes the job (removing a missing object succeeds). The other order,
    commit first, would leave an object nobody can see or delete when the removal fails.
    """
    row = request.db.one(
        "select a.storage_path, a.uploaded_by, private.member_role(a.workspace_id) as role"
        " from public.attachments a where a.id = %s",
        (path.id,),
    )
    if row is None:
        raise NotFound("Attachment not found")
    own = str(row["uploaded_by"]) == request.user_id
    if not (row["role"] in ("owner", "admin") or (row["role"] == "member" and own)):
        raise Forbidden("Only the uploader, an owner or an admin may delete this attachment")
    if request.db.execute("delete from public.attachments where id = %s", (path.id,)) == 0:
        raise NotFound("Attachment not found")
    supabase_admin.remove_objects(request.settings, BUCKET, [row["storage_path"]])
    return Result(status=204)


class Purged(Schema):
    ran: bool
    reason: str | None = None
    removed: int = 0
    remaining: int = 0


@app.post("/purge", schedule="*/30 * * * *", response=Purged)
def purge_orphans(request: Request) -> dict[str, int]:
    """Remove files left behind when a task, project or workspace was deleted (scheduled).

    Runs every 30 minutes (the scheduler, or the service role key). Rows leave the queue only
    in the transaction that removed their files, so a Storage failure keeps them queued for
    the next run; an overlapping run answers `ran: false`.
    """
    rows = request.db.all(
        "select name from private.storage_orphans where bucket_id = %s"
        " order by queued_at limit %s for update skip locked",
        (BUCKET, PURGE_BATCH),
    )
    names = [row["name"] for row in rows]
    if names:
        supabase_admin.remove_objects(request.settings, BUCKET, names)
        request.db.execute(
            "delete from private.storage_orphans where bucket_id = %s and name = any(%s)",
            (BUCKET, names),
        )
    remaining = request.db.value("select count(*) from private.storage_orphans")
    return {"removed": len(names), "remaining": int(remaining or 0)}


# ---- helpers --------------------------------------------------------------------------


def _check_limits(request: Request, body: AttachmentIn) -> None:
    """Size and content type against the settings; both problems reported together."""
    problems: list[dict[str, Any]] = []
    max_bytes = request.settings.attachment_max_bytes
    if body.size > max_bytes:
        problems.append(
            {
                "loc": ["body", "size"],
                "type": "too_large",
                "message": f"An attachment may be at most {max_bytes} bytes",
            }
        )
    allowed = request.settings.attachment_content_types or DEFAULT_CONTENT_TYPES
    if not _allowed(body.content_type, allowed):
        problems.append(
            {
                "loc": ["body", "content_type"],
                "type": "content_type_not_allowed",
                "message": f"Allowed content types: {', '.join(allowed)}",
            }
        )
    if problems:
        raise ValidationFailed(details=problems)


def _allowed(content_type: str, allowed: tuple[str, ...]) -> bool:
    media = content_type.split(";", 1)[0].strip()
    kind = media.split("/", 1)[0]
    return any(entry.lower() in (media, f"{kind}/*", "*/*") for entry in allowed)


handler = app.handler
