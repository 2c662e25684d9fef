"""`fnkit deploy` and Supabase's API keys: the secret key is a secret, named first in warnings,
and a deploy on the legacy service role key alone gets a migration note."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnkit import deploy

SECRET = "sb_secret_" + "d" * 31
ADMIN = {"shared.supabase_admin"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A bundle as `fnkit bundle attachments` leaves it (plan reads only its main.py)."""
    source = tmp_path / "build" / "functions" / "attachments"
    source.mkdir(parents=True)
    (source / "main.py").write_text("")
    return tmp_path


def plan(root: Path, env: str, *secrets: str) -> deploy.Plan:
    (root / "prod.env").write_text(env)
    return deploy.plan("attachments", root, env_file=root / "prod.env", secrets=secrets, uses=ADMIN)


BASE = "SUPABASE_URL=https://abcd.supabase.co\nUPSTASH_REDIS_REST_URL=https://u.upstash.io\n"
REFS = ("DATABASE_URL=database-url:1", "UPSTASH_REDIS_REST_TOKEN=upstash-token:1")


def test_the_secret_key_is_never_deployed_from_the_env_file(root: Path) -> None:
    the_plan = plan(
        root, BASE + f"SUPABASE_SECRET_KEY={SECRET}\nSUPABASE_PUBLISHABLE_KEY=sb_publishable_x\n"
    )
    assert "SUPABASE_SECRET_KEY" not in the_plan.env
    assert the_plan.env["SUPABASE_PUBLISHABLE_KEY"] == "sb_publishable_x"  # public by design
    (skipped,) = [w for w in the_plan.warnings if w.startswith("SUPABASE_SECRET_KEY from")]
    assert "--secret SUPABASE_SECRET_KEY=" in skipped
    written = (root / "build" / "deploy" / "attachments.env.yaml").read_text()
    assert SECRET not in written and all(SECRET not in w for w in the_plan.warnings)


def test_without_an_admin_key_the_warning_names_the_secret_key_first(root: Path) -> None:
    (warning,) = plan(root, BASE, *REFS).warnings
    assert warning.index("SUPABASE_SECRET_KEY") < warning.index("SUPABASE_SERVICE_ROLE_KEY")
    assert "503" in warning


def test_the_secret_key_alone_is_enough(root: Path) -> None:
    the_plan = plan(root, BASE, *REFS, "SUPABASE_SECRET_KEY=supabase-secret-key:2")
    assert the_plan.warnings == []
    assert "SUPABASE_SECRET_KEY=supabase-secret-key:2" in the_plan.argv[-1]


def test_the_legacy_service_role_key_alone_works_with_a_migration_note(root: Path) -> None:
    (note,) = plan(root, BASE, *REFS, "SUPABASE_SERVICE_ROLE_KEY=service-role:1").warnings
    assert "retiring" in note and "--secret SUPABASE_SECRET_KEY=" in note
    both = plan(
        root,
        BASE,
        *REFS,
        "SUPABASE_SERVICE_ROLE_KEY=service-role:1",
        "SUPABASE_SECRET_KEY=supabase-secret-key:2",
    )
    assert both.warnings == []  # in the middle of the move: nothing to say
