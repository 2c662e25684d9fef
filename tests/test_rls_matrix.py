"""The row-level security matrix: every table x select/insert/update/delete x caller.

Each cell runs one statement through `shared.db.Transaction` (the impersonation the functions
use) in a fresh workspace of its own and asserts the exact outcome: the number of rows seen or
changed, or the SQLSTATE. Every probe is rolled back.

Reading the outcomes:
* 0 rows on select/update/delete: the row is invisible to the caller (non-members learn nothing,
  not even that it exists) or the policy's USING clause excludes it.
* 42501 (DENIED): a privilege is missing (anon has none on our tables; nobody writes
  task_events) or the new row fails the policy's WITH CHECK.
* 23503 on inserting a child (task, comment, attachment): its parent is not visible to the
  caller, so for them it does not exist.
* 23514: the last owner cannot leave nor be demoted (workspace_keeps_an_owner).

After the matrix: the behaviours around it (creating a workspace, the owner rules, cascades,
triggers, the helpers the API calls).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shared.db import close_pools
from shared.settings import Settings
from tests.rls_convention import ACTIONS, make_row, probe_all, workspace_tables
from tests.rls_helpers import (
    CALLERS,
    DENIED,
    LAST_OWNER,
    NOT_FOUND,
    Conn,
    Outcome,
    Rows,
    World,
    acting_as,
    build_world,
    cells,
    create_user,
    insert_attachment,
    insert_comment,
    insert_task,
    outcome,
    scalar,
    settings_for,
)

# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rls_settings(database_url: str) -> Iterator[Settings]:
    yield settings_for(database_url)
    close_pools()


@pytest.fixture
def world(db_admin: Conn) -> World:
    return build_world(db_admin)


# --- the matrix -------------------------------------------------------------------------------

Setup = Callable[[Conn, World, "uuid.UUID | None"], dict[str, Any]]


def own_task(conn: Conn, world: World, me: uuid.UUID | None) -> dict[str, Any]:
    return {"own": insert_task(conn, world.project, created_by=me)}


def own_comment(conn: Conn, world: World, me: uuid.UUID | None) -> dict[str, Any]:
    return {"own": insert_comment(conn, world.task, author=me)}


def own_attachment(conn: Conn, world: World, me: uuid.UUID | None) -> dict[str, Any]:
    return {"own": insert_attachment(conn, world.task, uploaded_by=me)[0]}


def notifications(conn: Conn, world: World, me: uuid.UUID | None) -> dict[str, Any]:
    """One notification for the caller (anon has no user: the bystander's stands in) and one
    for the bystander, as the database webhook's receiver records them (as service role)."""
    made = {}
    bystander = world.users["bystander"]
    for name, user in (("own", me or bystander), ("theirs", bystander)):
        made[name] = scalar(
            conn,
            "insert into public.notifications (user_id, workspace_id, task_id, kind, event_key)"
            " values (%s, %s, %s, 'task_assigned', %s) returning id",
            (user, world.workspace, world.task, f"rls:{uuid.uuid4()}"),
        )
    return made


# The sign-up policy tables belong to the service role (the Before User Created hook, the
# members function's invite): every user and anon are refused every action by privilege.
NOBODY = {"owner": DENIED, "admin": DENIED, "member": DENIED, "viewer": DENIED,
          "outsider": DENIED, "anon": DENIED}  # fmt: skip


@dataclass(frozen=True)
class Case:
    table: str
    action: str  # select | insert | update | delete
    what: str
    sql: str
    expect: dict[str, Outcome]
    setup: Setup | None = None


CASES = [
    # workspaces: any user creates one; admins+ rename it; only owners delete it.
    Case(
        "workspaces", "select", "the workspace",
        "select id from public.workspaces where id = %(workspace)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    ),
    Case(
        "workspaces", "insert", "a new workspace",
        "insert into public.workspaces (name) values ('New')",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=1, anon=DENIED),
    ),
    Case(
        "workspaces", "update", "rename",
        "update public.workspaces set name = 'Renamed' where id = %(workspace)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "workspaces", "delete", "the workspace",
        "delete from public.workspaces where id = %(workspace)s",
        cells(owner=1, admin=0, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    # workspace_members: owners manage all; admins all but owners; anyone leaves; an owner stays.
    Case(
        "workspace_members", "select", "the roster of five",
        "select user_id from public.workspace_members where workspace_id = %(workspace)s",
        cells(owner=5, admin=5, member=5, viewer=5, outsider=0, anon=DENIED),
    ),
    Case(
        "workspace_members", "insert", "add a member",
        "insert into public.workspace_members (workspace_id, user_id, role)"
        " values (%(workspace)s, %(newbie)s, 'member')",
        cells(owner=1, admin=1, member=DENIED, viewer=DENIED, outsider=DENIED, anon=DENIED),
    ),
    Case(
        "workspace_members", "insert", "add an owner",
        "insert into public.workspace_members (workspace_id, user_id, role)"
        " values (%(workspace)s, %(newbie)s, 'owner')",
        cells(owner=1, admin=DENIED, member=DENIED, viewer=DENIED, outsider=DENIED, anon=DENIED),
    ),
    Case(
        "workspace_members", "update", "member to viewer",
        "update public.workspace_members set role = 'viewer'"
        " where workspace_id = %(workspace)s and user_id = %(bystander)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "workspace_members", "update", "member to owner",
        "update public.workspace_members set role = 'owner'"
        " where workspace_id = %(workspace)s and user_id = %(bystander)s",
        cells(owner=1, admin=DENIED, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "workspace_members", "update", "demote the only owner",
        "update public.workspace_members set role = 'admin'"
        " where workspace_id = %(workspace)s and user_id = %(owner)s",
        cells(owner=LAST_OWNER, admin=0, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "workspace_members", "delete", "remove a member",
        "delete from public.workspace_members"
        " where workspace_id = %(workspace)s and user_id = %(bystander)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "workspace_members", "delete", "remove the only owner",
        "delete from public.workspace_members"
        " where workspace_id = %(workspace)s and user_id = %(owner)s",
        cells(owner=LAST_OWNER, admin=0, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "workspace_members", "delete", "leave",
        "delete from public.workspace_members"
        " where workspace_id = %(workspace)s and user_id = %(me)s",
        cells(owner=LAST_OWNER, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    ),
    # projects follow the convention (tests/rls_convention.py): derived, not written here.
    # tasks: members create and edit; creators (members+) and admins+ delete.
    Case(
        "tasks", "select", "the task",
        "select id from public.tasks where workspace_id = %(workspace)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    ),
    Case(
        "tasks", "insert", "a new task",
        "insert into public.tasks (project_id, title) values (%(project)s, 'New')",
        cells(owner=1, admin=1, member=1, viewer=DENIED, outsider=NOT_FOUND, anon=DENIED),
    ),
    Case(
        "tasks", "update", "someone else's task",
        "update public.tasks set title = 'Renamed', status = 'done' where id = %(task)s",
        cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "tasks", "delete", "someone else's task",
        "delete from public.tasks where id = %(task)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "tasks", "delete", "a task I created",
        "delete from public.tasks where id = %(own)s",
        cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
        setup=own_task,
    ),
    # task_comments: members comment; authors edit; authors (members+) and admins+ delete.
    Case(
        "task_comments", "select", "the comment",
        "select id from public.task_comments where workspace_id = %(workspace)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    ),
    Case(
        "task_comments", "insert", "a new comment",
        "insert into public.task_comments (task_id, body) values (%(task)s, 'Hello')",
        cells(owner=1, admin=1, member=1, viewer=DENIED, outsider=NOT_FOUND, anon=DENIED),
    ),
    Case(
        "task_comments", "update", "someone else's comment",
        "update public.task_comments set body = 'Edited' where id = %(comment)s",
        cells(owner=0, admin=0, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "task_comments", "update", "my comment",
        "update public.task_comments set body = 'Edited' where id = %(own)s",
        cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
        setup=own_comment,
    ),
    Case(
        "task_comments", "delete", "someone else's comment",
        "delete from public.task_comments where id = %(comment)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "task_comments", "delete", "my comment",
        "delete from public.task_comments where id = %(own)s",
        cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
        setup=own_comment,
    ),
    # attachments: members attach and edit; uploaders (members+) and admins+ delete.
    Case(
        "attachments", "select", "the attachment",
        "select id from public.attachments where workspace_id = %(workspace)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    ),
    Case(
        "attachments", "insert", "a new attachment",
        "insert into public.attachments (task_id, filename, content_type, size_bytes)"
        " values (%(task)s, 'a.png', 'image/png', 10)",
        cells(owner=1, admin=1, member=1, viewer=DENIED, outsider=NOT_FOUND, anon=DENIED),
    ),
    Case(
        "attachments", "update", "rename someone else's",
        "update public.attachments set filename = 'b.txt' where id = %(attachment)s",
        cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "attachments", "delete", "someone else's",
        "delete from public.attachments where id = %(attachment)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=DENIED),
    ),
    Case(
        "attachments", "delete", "one I uploaded",
        "delete from public.attachments where id = %(own)s",
        cells(owner=1, admin=1, member=1, viewer=0, outsider=0, anon=DENIED),
        setup=own_attachment,
    ),
    # task_events: members read the audit trail; nobody writes it.
    Case(
        "task_events", "select", "the task's insert event",
        "select id from public.task_events where workspace_id = %(workspace)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=DENIED),
    ),
    Case(
        "task_events", "insert", "a forged event",
        "insert into public.task_events (workspace_id, task_id, action)"
        " values (%(workspace)s, %(task)s, 'delete')",
        cells(owner=DENIED, admin=DENIED, member=DENIED, viewer=DENIED, outsider=DENIED,
              anon=DENIED),
    ),
    Case(
        "task_events", "update", "rewrite history",
        "update public.task_events set action = 'delete' where workspace_id = %(workspace)s",
        cells(owner=DENIED, admin=DENIED, member=DENIED, viewer=DENIED, outsider=DENIED,
              anon=DENIED),
    ),
    Case(
        "task_events", "delete", "erase history",
        "delete from public.task_events where workspace_id = %(workspace)s",
        cells(owner=DENIED, admin=DENIED, member=DENIED, viewer=DENIED, outsider=DENIED,
              anon=DENIED),
    ),
    # storage.objects of the attachments bucket: members read; members+ upload only what an
    # attachment row names; the uploader (the bystander here) or owners and admins replace and
    # delete. Supabase grants anon the table, so anon is held off by having no policy.
    Case(
        "storage.objects", "select", "the object",
        "select id from storage.objects where bucket_id = 'attachments' and name = %(object)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=0, anon=0),
    ),
    Case(
        "storage.objects", "insert", "an upload no attachment names",
        "insert into storage.objects (bucket_id, name)"
        " values ('attachments', %(workspace)s || '/upload/new.txt')",
        cells(owner=DENIED, admin=DENIED, member=DENIED, viewer=DENIED, outsider=DENIED,
              anon=DENIED),
    ),
    Case(
        "storage.objects", "insert", "the upload of an attachment",
        "insert into storage.objects (bucket_id, name) values ('attachments', %(pending)s)",
        cells(owner=1, admin=1, member=1, viewer=DENIED, outsider=DENIED, anon=DENIED),
        setup=lambda db, world, me: {"pending": insert_attachment(db, world.task, uploaded_by=world.users["bystander"])[1]},
    ),
    Case(
        "storage.objects", "update", "replace someone else's object",
        "update storage.objects set metadata = '{}'"
        " where bucket_id = 'attachments' and name = %(object)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=0),
    ),
    Case(
        "storage.objects", "delete", "someone else's object",
        "delete from storage.objects where bucket_id = 'attachments' and name = %(object)s",
        cells(owner=1, admin=1, member=0, viewer=0, outsider=0, anon=0),
    ),
    # notifications: written by the database webhook (service role); each user reads and marks
    # read their own, whatever their workspace; nobody else's is visible; nobody inserts or
    # deletes; only read_at may change.
    Case(
        "notifications", "select", "my notification",
        "select id from public.notifications where id = %(own)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=1, anon=DENIED),
        setup=notifications,
    ),
    Case(
        "notifications", "select", "someone else's notification",
        "select id from public.notifications where id = %(theirs)s",
        cells(owner=0, admin=0, member=0, viewer=0, outsider=0, anon=DENIED),
        setup=notifications,
    ),
    Case(
        "notifications", "insert", "a forged notification",
        "insert into public.notifications (user_id, workspace_id, kind, event_key)"
        " values (%(bystander)s, %(workspace)s, 'task_assigned', 'forged')",
        cells(**NOBODY),
    ),
    Case(
        "notifications", "update", "mark mine read",
        "update public.notifications set read_at = now() where id = %(own)s",
        cells(owner=1, admin=1, member=1, viewer=1, outsider=1, anon=DENIED),
        setup=notifications,
    ),
    Case(
        "notifications", "update", "mark someone else's read",
        "update public.notifications set read_at = now() where id = %(theirs)s",
        cells(owner=0, admin=0, member=0, viewer=0, outsider=0, anon=DENIED),
        setup=notifications,
    ),
    Case(
        "notifications", "update", "rewrite mine",
        "update public.notifications set payload = '{}', user_id = %(bystander)s"
        " where id = %(own)s",
        cells(**NOBODY),
        setup=notifications,
    ),
    Case(
        "notifications", "delete", "mine",
        "delete from public.notifications where id = %(own)s",
        cells(**NOBODY),
        setup=notifications,
    ),
    # signup_denied_domains and signup_invitations: the service role's alone.
    Case(
        "signup_denied_domains", "select", "the deny list",
        "select domain from public.signup_denied_domains",
        cells(**NOBODY),
    ),
    Case(
        "signup_denied_domains", "insert", "deny a domain",
        "insert into public.signup_denied_domains (domain) values ('example.org')",
        cells(**NOBODY),
    ),
    Case(
        "signup_denied_domains", "update", "rewrite a reason",
        "update public.signup_denied_domains set reason = 'x'",
        cells(**NOBODY),
    ),
    Case(
        "signup_denied_domains", "delete", "lift a ban",
        "delete from public.signup_denied_domains",
        cells(**NOBODY),
    ),
    Case(
        "signup_invitations", "select", "the invitations",
        "select email from public.signup_invitations",
        cells(**NOBODY),
    ),
    Case(
        "signup_invitations", "insert", "invite myself",
        "insert into public.signup_invitations (email) values ('me@example.org')",
        cells(**NOBODY),
    ),
    Case(
        "signup_invitations", "update", "redirect an invitation",
        "update public.signup_invitations set email = 'me@example.org'",
        cells(**NOBODY),
    ),
    Case(
        "signup_invitations", "delete", "withdraw an invitation",
        "delete from public.signup_invitations",
        cells(**NOBODY),
    ),
]  # fmt: skip


def cell_id(case: Case, caller: str) -> str:
    return f"{case.table}:{case.action}:{case.what.replace(' ', '_')}:{caller}"


@pytest.mark.parametrize(
    ("case", "caller"),
    [pytest.param(case, caller, id=cell_id(case, caller)) for case in CASES for caller in CALLERS],
)
def test_rls_matrix(
    case: Case, caller: str, world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    me = world.caller_id(caller)
    params: dict[str, Any] = {
        "workspace": world.workspace,
        "project": world.project,
        "task": world.task,
        "comment": world.comment,
        "attachment": world.attachment,
        "object": world.object_name,
        "owner": world.users["owner"],
        "bystander": world.users["bystander"],
        "newbie": world.users["newbie"],
        "me": me,
    }
    if case.setup is not None:
        params.update(case.setup(db_admin, world, me))

    with acting_as(rls_settings, me) as tx:
        if case.action == "select":
            got = outcome(lambda: len(tx.all(case.sql, params)))
        else:
            got = outcome(lambda: tx.execute(case.sql, params))

    assert got == case.expect[caller]


def conventional_tables(conn: Conn) -> list[str]:
    """Workspace tables without hand-written cases: their matrix is CONVENTION's."""
    exceptions = {case.table for case in CASES}
    return [t for t in workspace_tables(conn) if t not in exceptions]


def test_conventional_workspace_tables_allow_what_the_convention_says(
    world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    """Every cell of every conventional table, all gaps reported together."""
    tables = conventional_tables(db_admin)
    assert "projects" in tables  # the product's own conventional table keeps this honest
    gaps = probe_all(db_admin, rls_settings, world, tables)
    assert not gaps, "\n".join(["row-level security differs from the convention:", *gaps])


def test_matrix_covers_every_table_and_action(db_admin: Conn) -> None:
    tables = [
        name
        for (name,) in db_admin.execute(
            "select tablename from pg_catalog.pg_tables where schemaname = 'public'"
        )
    ]
    covered = {(case.table, case.action) for case in CASES}
    covered |= {(t, action) for t in conventional_tables(db_admin) for action in ACTIONS}
    missing = [
        f"{action} on {table}"
        for table in sorted([*tables, "storage.objects"])
        for action in ACTIONS
        if (table, action) not in covered
    ]
    assert not missing, "no matrix row for: " + ", ".join(missing)


# --- creating a workspace ---------------------------------------------------------------------


def test_creating_a_workspace_makes_the_caller_owner_and_reads_it_back(
    db_admin: Conn, rls_settings: Settings
) -> None:
    me = create_user(db_admin)
    with acting_as(rls_settings, me, commit=True) as tx:
        created = tx.one(
            "insert into public.workspaces (name) values (%s) returning id, slug, created_by",
            ("Team Rocket!",),
        )
        assert created is not None
        assert created["created_by"] == me
        assert created["slug"].startswith("team-rocket-")
        role = tx.value(
            "select role from public.workspace_members where workspace_id = %s and user_id = %s",
            (created["id"], me),
        )
        assert role == "owner"

    with acting_as(rls_settings, me) as tx:
        assert tx.value("select name from public.workspaces where id = %s", (created["id"],)) == (
            "Team Rocket!"
        )


def test_nobody_creates_a_workspace_in_someone_elses_name(
    db_admin: Conn, rls_settings: Settings
) -> None:
    me, victim = create_user(db_admin), create_user(db_admin)
    with acting_as(rls_settings, me) as tx:
        got = outcome(
            lambda: tx.execute(
                "insert into public.workspaces (name, created_by) values ('X', %s)", (victim,)
            )
        )
    assert got == DENIED


def test_a_creator_who_left_no_longer_sees_the_workspace(
    world: World, rls_settings: Settings
) -> None:
    owner, admin = world.users["owner"], world.users["admin"]
    with acting_as(rls_settings, owner, commit=True) as tx:
        tx.execute(
            "update public.workspace_members set role = 'owner'"
            " where workspace_id = %s and user_id = %s",
            (world.workspace, admin),
        )
        tx.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (world.workspace, owner),
        )
    with acting_as(rls_settings, owner) as tx:
        assert tx.all("select id from public.workspaces where id = %s", (world.workspace,)) == []


# --- the owner rules --------------------------------------------------------------------------


def test_last_owner_error_names_the_rule(world: World, rls_settings: Settings) -> None:
    with (
        acting_as(rls_settings, world.users["owner"]) as tx,
        pytest.raises(psycopg.errors.CheckViolation) as raised,
    ):
        tx.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (world.workspace, world.users["owner"]),
        )
    assert raised.value.diag.constraint_name == "workspace_keeps_an_owner"
    assert raised.value.diag.table_name == "workspace_members"


def test_with_a_second_owner_one_may_leave_but_not_both(
    world: World, rls_settings: Settings
) -> None:
    owner, admin = world.users["owner"], world.users["admin"]
    with acting_as(rls_settings, owner) as tx:
        assert (
            tx.execute(
                "update public.workspace_members set role = 'owner'"
                " where workspace_id = %s and user_id = %s",
                (world.workspace, admin),
            )
            == 1
        )
        # One statement removing both owners leaves none: refused as a whole.
        both = outcome(
            lambda: tx.execute(
                "update public.workspace_members set role = 'member'"
                " where workspace_id = %s and role = 'owner'",
                (world.workspace,),
            )
        )
        assert both == LAST_OWNER
    with acting_as(rls_settings, owner) as tx:
        tx.execute(
            "update public.workspace_members set role = 'owner'"
            " where workspace_id = %s and user_id = %s",
            (world.workspace, admin),
        )
        assert (
            tx.execute(
                "delete from public.workspace_members where workspace_id = %s and user_id = %s",
                (world.workspace, owner),
            )
            == 1
        )


def test_an_admin_cannot_demote_an_owner_nor_themselves_to_owner(
    world: World, rls_settings: Settings
) -> None:
    with acting_as(rls_settings, world.users["admin"]) as tx:
        assert (
            outcome(
                lambda: tx.execute(
                    "update public.workspace_members set role = 'owner'"
                    " where workspace_id = %s and user_id = %s",
                    (world.workspace, world.users["admin"]),
                )
            )
            == DENIED
        )


def test_a_member_cannot_promote_themselves(world: World, rls_settings: Settings) -> None:
    with acting_as(rls_settings, world.users["member"]) as tx:
        assert (
            tx.execute(
                "update public.workspace_members set role = 'admin'"
                " where workspace_id = %s and user_id = %s",
                (world.workspace, world.users["member"]),
            )
            == 0
        )


# --- cascades ---------------------------------------------------------------------------------

def test_an_owner_deleting_the_workspace_deletes_everything_in_it(
    world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    """Every table with a workspace_id (from the catalog: new tables included), each holding
    a row of the workspace when it goes."""
    tables = workspace_tables(db_admin)
    for table in conventional_tables(db_admin):
        make_row(db_admin, table, world)
    with acting_as(rls_settings, world.users["owner"], commit=True) as tx:
        assert tx.execute("delete from public.workspaces where id = %s", (world.workspace,)) == 1
    assert {"projects", "tasks", "task_events", "notifications"} <= set(tables)
    query = sql.SQL("select count(*) from public.{} where workspace_id = %s")
    left = {t: scalar(db_admin, query.format(sql.Identifier(t)), (world.workspace,)) for t in tables}
    assert {t: n for t, n in left.items() if n} == {}, "rows outlived their workspace"
    # Subscribers hear the workspace went away, once, not once per row it took along.
    deletes = db_admin.execute(
        "select payload ->> 'table' from realtime.messages where topic = %s and event = 'DELETE'",
        (f"workspace:{world.workspace}",),
    ).fetchall()
    assert deletes == [("workspaces",)]


def test_removing_a_member_unassigns_their_tasks(
    world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    db_admin.execute(
        "update public.tasks set assignee_id = %s where id = %s",
        (world.users["member"], world.task),
    )
    with acting_as(rls_settings, world.users["admin"], commit=True) as tx:
        tx.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (world.workspace, world.users["member"]),
        )
    assignee = scalar(db_admin, "select assignee_id from public.tasks where id = %s", (world.task,))
    assert assignee is None


def test_the_assignee_must_be_a_member(world: World, rls_settings: Settings) -> None:
    with acting_as(rls_settings, world.users["member"]) as tx:
        got = outcome(
            lambda: tx.execute(
                "update public.tasks set assignee_id = %s where id = %s",
                (world.users["outsider"], world.task),
            )
        )
    assert got == NOT_FOUND


def test_a_task_cannot_move_to_a_project_of_another_workspace(
    world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    owner = world.users["owner"]
    other = scalar(
        db_admin,
        "insert into public.workspaces (name, created_by) values ('Other', %s) returning id",
        (owner,),
    )
    other_project = scalar(
        db_admin,
        "insert into public.projects (workspace_id, name) values (%s, 'Elsewhere') returning id",
        (other,),
    )
    with acting_as(rls_settings, owner) as tx:
        got = outcome(
            lambda: tx.execute(
                "update public.tasks set project_id = %s where id = %s", (other_project, world.task)
            )
        )
    assert got == NOT_FOUND


# --- what the database keeps for itself -------------------------------------------------------


def test_task_version_and_completion_are_kept_by_the_database(
    world: World, rls_settings: Settings
) -> None:
    with acting_as(rls_settings, world.users["member"]) as tx:
        row = tx.one(
            "insert into public.tasks (project_id, title, status) values (%s, 'T', 'todo')"
            " returning id, workspace_id, version, completed_at, created_by",
            (world.project,),
        )
        assert row is not None
        assert (row["workspace_id"], row["version"], row["completed_at"]) == (
            world.workspace,
            1,
            None,
        )
        assert row["created_by"] == world.users["member"]
        done = tx.one(
            "update public.tasks set status = 'done' where id = %s and version = 1"
            " returning version, completed_at",
            (row["id"],),
        )
        assert done is not None
        assert done["version"] == 2
        assert done["completed_at"] is not None
        # A stale version changes nothing (the API answers 409 VERSION_CONFLICT).
        assert (
            tx.execute(
                "update public.tasks set title = 'x' where id = %s and version = 1", (row["id"],)
            )
            == 0
        )
        reopened = tx.one(
            "update public.tasks set status = 'todo' where id = %s returning version, completed_at",
            (row["id"],),
        )
        assert reopened == {"version": 3, "completed_at": None}


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("update public.tasks set version = 99 where id = %(task)s", id="tasks.version"),
        pytest.param("update public.tasks set workspace_id = %(other)s where id = %(task)s",
                     id="tasks.workspace_id"),
        pytest.param("update public.tasks set created_by = %(me)s where id = %(task)s",
                     id="tasks.created_by"),
        pytest.param("update public.task_comments set author_id = %(me)s where id = %(comment)s",
                     id="task_comments.author_id"),
        pytest.param("update public.workspace_members set user_id = %(me)s"
                     " where user_id = %(bystander)s", id="workspace_members.user_id"),
        pytest.param("update public.projects set workspace_id = %(other)s where id = %(project)s",
                     id="projects.workspace_id"),
    ],
)  # fmt: skip
def test_columns_the_database_owns_are_not_updatable(
    sql: str, world: World, rls_settings: Settings
) -> None:
    params = {
        "task": world.task,
        "comment": world.comment,
        "project": world.project,
        "bystander": world.users["bystander"],
        "me": world.users["owner"],
        "other": uuid.uuid4(),
    }
    with acting_as(rls_settings, world.users["owner"]) as tx:
        assert outcome(lambda: tx.execute(sql, params)) == DENIED


# --- helpers the API calls --------------------------------------------------------------------


def test_user_id_by_email_answers_only_those_who_manage_members(
    world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    email = scalar(db_admin, "select email from auth.users where id = %s", (world.users["newbie"],))
    lookup = "select private.user_id_by_email(%s)"
    for caller, expected in (
        ("owner", world.users["newbie"]),
        ("admin", world.users["newbie"]),
        ("member", None),
        ("outsider", None),
    ):
        with acting_as(rls_settings, world.users[caller]) as tx:
            assert tx.value(lookup, (f"  {email.upper()} ",)) == expected, caller
    with acting_as(rls_settings, world.users["owner"]) as tx:
        assert tx.value(lookup, ("nobody@example.test",)) is None
    with acting_as(rls_settings, None) as tx:
        assert outcome(lambda: len(tx.all(lookup, (email,)))) == DENIED


def test_member_directory_lists_emails_to_members_only(
    world: World, rls_settings: Settings
) -> None:
    query = "select user_id, email, role from private.member_directory(%s)"
    with acting_as(rls_settings, world.users["viewer"]) as tx:
        rows = tx.all(query, (world.workspace,))
    assert {r["user_id"] for r in rows} == {
        world.users[label] for label in ("owner", "admin", "member", "viewer", "bystander")
    }
    assert all(r["email"].endswith("@example.test") for r in rows)
    with acting_as(rls_settings, world.users["outsider"]) as tx:
        assert tx.all(query, (world.workspace,)) == []


def test_membership_helpers(world: World, rls_settings: Settings) -> None:
    ws = world.workspace
    with acting_as(rls_settings, world.users["admin"]) as tx:
        row = tx.one(
            "select private.is_member(%(ws)s) as member, private.member_role(%(ws)s) as role,"
            " private.has_role(%(ws)s, '{owner,admin}') as manages,"
            " private.has_role(%(ws)s, '{owner}') as owns",
            {"ws": ws},
        )
    assert row == {"member": True, "role": "admin", "manages": True, "owns": False}
    with acting_as(rls_settings, world.users["outsider"]) as tx:
        assert tx.value("select private.is_member(%s)", (ws,)) is False


# ---- what needs MFA needs it in the database too (PostgREST is another way in) ---------------


@pytest.mark.parametrize(
    ("what", "sql"),
    [
        ("delete the workspace", "delete from public.workspaces where id = %(workspace)s"),
        (
            "make a member owner",
            "update public.workspace_members set role = 'owner'"
            " where workspace_id = %(workspace)s and user_id = %(member)s",
        ),
        (
            "add an owner",
            "insert into public.workspace_members (workspace_id, user_id, role)"
            " values (%(workspace)s, %(newbie)s, 'owner')",
        ),
        (
            "remove an owner",
            "delete from public.workspace_members where workspace_id = %(workspace)s"
            " and user_id = %(owner)s",
        ),
    ],
)
def test_an_aal1_owner_cannot_do_what_needs_mfa(
    what: str, sql: str, world: World, rls_settings: Settings, db_admin: Conn
) -> None:
    # A second owner, so that "remove an owner" is not refused by the last-owner rule instead.
    db_admin.execute(
        "insert into public.workspace_members (workspace_id, user_id, role) values (%s, %s, 'owner')"
        " on conflict (workspace_id, user_id) do update set role = 'owner'",
        (world.workspace, world.users["admin"]),
    )
    params = {
        "workspace": world.workspace,
        "member": world.users["member"],
        "newbie": world.users["newbie"],
        "owner": world.users["owner"],
    }
    with acting_as(rls_settings, world.users["owner"], aal="aal1") as tx:
        got = outcome(lambda: tx.execute(sql, params))
    assert got in (Rows(0), DENIED), f"{what}: {got}"
    with acting_as(rls_settings, world.users["owner"], aal="aal2") as tx:
        assert outcome(lambda: tx.execute(sql, params)) == Rows(1), what
