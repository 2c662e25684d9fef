"""notes_example: notes on tasks, the README's complete example of a function."""

from uuid import UUID

from pydantic import Field

from shared import READ, WRITE, App, Model, NotFound, Request, Result

app = App("notes_example", title="Notes", description="Notes on tasks, by workspace members.")
NOTE = "id, task_id, body, author_id"
MINE = f"select {NOTE} from task_comments where author_id = auth.uid() order by created_at desc"
ADD = f"insert into task_comments (task_id, body) values (%s, %s) returning {NOTE}"


class NoteIn(Model):  # a request model: an unknown field or a bad value is a 422
    task_id: UUID
    body: str = Field(min_length=1, max_length=2000)


class Note(NoteIn):  # the response, for the OpenAPI document
    id: UUID
    author_id: UUID | None


@app.get("/", response=list[Note], rate=READ)
def my_notes(request: Request) -> Result:
    """My latest notes; RLS hides those in workspaces I have left."""
    return Result(request.db.all(MINE + " limit 50"))


@app.post("/", response=Note, status=201, rate=WRITE)
def add_note(request: Request, body: NoteIn) -> Result:
    """Add a note to a task as the caller (viewers: 403); retry safely with Idempotency-Key."""
    if request.db.value("select 1 from tasks where id = %s", (body.task_id,)) is None:
        raise NotFound("Task not found")  # absent, or in a workspace the caller cannot see
    return Result(request.db.one(ADD, (body.task_id, body.body)), status=201)


handler = app.handler
