"""`fnkit deploy`: the exact `gcloud functions deploy` command, settings without secrets.

Runs in a throwaway copy of the repository layout (pyproject.toml, the lock, shared/,
functions/) so bundles and the generated env YAML never land in the working tree.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fnkit import deploy
from fnkit.cli import main as fnkit_main

ROOT = Path(__file__).resolve().parents[1]
SECRET_VALUES = ("service-role-value-123", "jwt-secret-value-" + "x" * 32, "up-token-value-9")
ENV_FILE = f"""
# settings for production
SUPABASE_URL=https://abcd.supabase.co
export UPSTASH_REDIS_REST_URL="https://eu1-fine-cat-123.upstash.io"
ALLOWED_ORIGINS='https://app.example.com,https://admin.example.com'
DB_POOL_MAX=3  # per instance
SUPABASE_SERVICE_ROLE_KEY={SECRET_VALUES[0]}
SUPABASE_JWT_SECRET={SECRET_VALUES[1]}
UPSTASH_REDIS_REST_TOKEN={SECRET_VALUES[2]}
PORT=9999
EMPTY=
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository layout with health and a function using Supabase admin."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(ROOT / "requirements.lock", tmp_path / "requirements.lock")
    shutil.copytree(ROOT / "shared", tmp_path / "shared")
    shutil.copytree(ROOT / "functions" / "health", tmp_path / "functions" / "health")
    admin = tmp_path / "functions" / "attachments" / "main.py"
    admin.parent.mkdir(parents=True)
    admin.write_text(
        "from shared import App\nfrom shared.supabase_admin import get_client\n\n"
        "app = App('attachments')\nhandler = app.handler\n"
    )
    (tmp_path / "prod.env").write_text(ENV_FILE)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def _yaml(path: Path) -> dict[str, str]:
    """The generated file: one `KEY: "json string"` per line, which is YAML too."""
    lines = path.read_text().splitlines()
    return {key: json.loads(value) for key, _, value in (line.partition(": ") for line in lines)}


def test_min_instances_only_when_asked(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fnkit_main(["deploy", "health", "--dry-run", "--region", "r1"]) == 0
    assert "--min-instances" not in capsys.readouterr().out
    assert fnkit_main(["deploy", "health", "--dry-run", "--min-instances", "2"]) == 0
    deploy_line = capsys.readouterr().out.splitlines()[0]
    assert shlex.split(deploy_line)[-2:] == ["--min-instances", "2"]


def test_dry_run_prints_the_exact_command(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = fnkit_main(
        [
            "deploy", "health", "--dry-run", "--env-file", "prod.env",
            "--secret", "SUPABASE_JWT_SECRET=supabase-jwt-secret:3",
            "--secret", "UPSTASH_REDIS_REST_TOKEN=upstash-token:latest",
            "--secret", "DATABASE_URL=projects/123/secrets/pooler-url/versions/2",
            "--region", "europe-west1", "--project", "acme-prod",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    deploy_line, boost_line = out.strip().splitlines()
    assert shlex.split(boost_line) == [
        "gcloud", "run", "services", "update", "health", "--cpu-boost",
        "--region", "europe-west1", "--project", "acme-prod",
    ]  # fmt: skip
    assert shlex.split(deploy_line) == [
        "gcloud", "functions", "deploy", "health",
        "--gen2", "--runtime", "python311", "--entry-point", "handler", "--trigger-http",
        "--allow-unauthenticated",
        "--source", "build/functions/health",
        "--memory", "256Mi", "--timeout", "30s", "--max-instances", "10",
        "--region", "europe-west1", "--project", "acme-prod",
        "--env-vars-file", "build/deploy/health.env.yaml",
        "--set-secrets",
        "DATABASE_URL=projects/123/secrets/pooler-url/versions/2,"
        "SUPABASE_JWT_SECRET=supabase-jwt-secret:3,"
        "UPSTASH_REDIS_REST_TOKEN=upstash-token:latest",
    ]  # fmt: skip
    assert _yaml(project / "build" / "deploy" / "health.env.yaml") == {
        "SUPABASE_URL": "https://abcd.supabase.co",
        "UPSTASH_REDIS_REST_URL": "https://eu1-fine-cat-123.upstash.io",
        "ALLOWED_ORIGINS": "https://app.example.com,https://admin.example.com",
        "DB_POOL_MAX": "3",
    }
    assert (project / "build" / "functions" / "health" / "requirements.txt").is_file()
    # The secret left in the env file is not deployed from it, and the user is told how to.
    assert "SUPABASE_SERVICE_ROLE_KEY" in err and "--secret SUPABASE_SERVICE_ROLE_KEY=" in err
    assert "PORT" in err
    everything = out + err + "".join(p.read_text() for p in (project / "build").rglob("*.yaml"))
    for value in SECRET_VALUES:
        assert value not in everything


def test_sizing_comes_from_the_table_and_can_be_overridden(project: Path) -> None:
    source = project / "build" / "functions" / "attachments"
    source.mkdir(parents=True)
    (source / "main.py").write_text("")
    plan = deploy.plan("attachments", project, uses={"shared.supabase_admin"})
    flags = dict(zip(plan.argv[11::2], plan.argv[12::2], strict=False))
    assert (flags["--memory"], flags["--timeout"]) == ("512Mi", "30s")
    assert "--env-vars-file" not in plan.argv and "--set-secrets" not in plan.argv
    # No settings given: the deployed ones stay, but a first deploy would have none.
    (first_deploy,) = plan.warnings
    assert "as on a first deploy" in first_deploy

    plan = deploy.plan(
        "attachments",
        project,
        memory="1Gi",
        timeout="120s",
        max_instances=3,
        secrets=["SUPABASE_URL=supabase-url:1"],
        uses={"shared.supabase_admin"},
    )
    assert plan.argv[plan.argv.index("--memory") :][:6] == [
        "--memory", "1Gi", "--timeout", "120s", "--max-instances", "3",
    ]  # fmt: skip
    required, service_role = plan.warnings
    for missing in ("DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"):
        assert missing in required
    assert "SUPABASE_URL," not in required
    assert "SUPABASE_SERVICE_ROLE_KEY" in service_role and "503" in service_role


def test_a_function_needing_the_service_role_key_is_warned_about_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fnkit_main(["deploy", "attachments", "--dry-run", "--env-file", "prod.env"]) == 0
    out, err = capsys.readouterr()
    assert "--memory 512Mi" in out
    text = " ".join(err.split())
    assert "attachments needs DATABASE_URL, UPSTASH_REDIS_REST_TOKEN:" in text
    assert "without --secret SUPABASE_SECRET_KEY=<secret>:<version>" in text
    assert "SUPABASE_SERVICE_ROLE_KEY=<secret>:<version>) those routes answer 503" in text


@pytest.mark.parametrize(
    "spec",
    [
        SECRET_VALUES[1],  # a value pasted instead of a reference
        f"SUPABASE_JWT_SECRET={SECRET_VALUES[1]}",
        "SUPABASE_JWT_SECRET=name",  # no version
        "SUPABASE_JWT_SECRET=name:0",
        "lower=name:1",
        "PORT=port:1",
    ],
)
def test_bad_secret_references_are_refused_without_echoing_them(
    project: Path, capsys: pytest.CaptureFixture[str], spec: str
) -> None:
    assert fnkit_main(["deploy", "health", "--dry-run", "--secret", spec]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "--secret" in err or "Cloud Run" in err
    assert SECRET_VALUES[1] not in err


def test_env_file_problems_are_clear(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fnkit_main(["deploy", "health", "--dry-run", "--env-file", "missing.env"]) == 1
    assert "missing.env does not exist" in capsys.readouterr().err
    (project / "bad.env").write_text("SUPABASE_URL=https://x.supabase.co\nnot a setting\n")
    assert fnkit_main(["deploy", "health", "--dry-run", "--env-file", "bad.env"]) == 1
    assert "bad.env:2: expected KEY=VALUE" in capsys.readouterr().err
    assert fnkit_main(["deploy", "nothing-here", "--dry-run"]) == 1
    assert "no function named 'nothing-here'" in capsys.readouterr().err


def test_without_dry_run_gcloud_runs_with_that_command(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = project / "fake-bin"
    bin_dir.mkdir()
    record = project / "gcloud-argv.json"
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}, open({str(record)!r}, 'w'))\n"
        "sys.exit(3)\n"
    )
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert fnkit_main(["deploy", "health", "--env-file", "prod.env", "--region", "us-east1"]) == 3
    called = json.loads(record.read_text())
    assert called["cwd"] == str(project)
    assert called["argv"][:3] == ["functions", "deploy", "health"]
    assert called["argv"][-4:] == [
        "--region", "us-east1", "--env-vars-file", "build/deploy/health.env.yaml",
    ]  # fmt: skip

    monkeypatch.setenv("PATH", str(project / "nowhere"))
    assert fnkit_main(["deploy", "health"]) == 1
    assert "gcloud is not installed" in capsys.readouterr().err


def test_parse_env_file(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    path.write_text(
        'A=1\nexport B = two words \nC="quoted # not a comment"\nD=value # comment\n# E=no\n'
    )
    assert deploy.parse_env_file(path) == {
        "A": "1",
        "B": "two words",
        "C": "quoted # not a comment",
        "D": "value",
    }


SCHEDULED = '''"""A function with two scheduled routes."""
from shared import App
from shared.schedule import Schedule

app = App("sweeper")


@app.post("/purge", schedule="*/30 * * * *")
def purge(request):
    return {}


@app.post("/digest", schedule=Schedule("0 7 * * 1", "Europe/Paris"))
def digest(request):
    return {}


handler = app.handler
'''


def test_dry_run_shows_the_scheduler_jobs_and_the_removals(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main = project / "functions" / "sweeper" / "main.py"
    main.parent.mkdir(parents=True)
    main.write_text(SCHEDULED)
    # gcloud answers `scheduler jobs list` with what is deployed: purge, and a route now gone.
    bin_dir = project / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(
        "#!/bin/sh\necho projects/acme-prod/locations/europe-west1/jobs/fnkit-sweeper-purge\n"
        "echo projects/acme-prod/locations/europe-west1/jobs/fnkit-sweeper-old-report\n"
    )
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    account = "scheduler@acme-prod.iam.gserviceaccount.com"
    args = ["deploy", "sweeper", "--dry-run", "--region", "europe-west1", "--project", "acme-prod"]
    assert fnkit_main(args) == 1
    assert "--scheduler-service-account" in capsys.readouterr().err
    assert fnkit_main([*args, "--scheduler-service-account", account]) == 0
    out, err = capsys.readouterr()
    lines = [shlex.split(line) for line in out.splitlines()]
    assert lines[0][:4] == ["gcloud", "functions", "deploy", "sweeper"]
    assert lines.pop(1)[:6] == ["gcloud", "run", "services", "update", "sweeper", "--cpu-boost"]
    url = "https://europe-west1-acme-prod.cloudfunctions.net/sweeper"
    common = ["--location", "europe-west1", "--project", "acme-prod"]
    assert lines[1:] == [
        ["gcloud", "scheduler", "jobs", "update", "http", "fnkit-sweeper-purge", *common,
         "--schedule", "*/30 * * * *", "--time-zone", "UTC", "--uri", f"{url}/purge",
         "--http-method", "POST", "--oidc-service-account-email", account,
         "--oidc-token-audience", url],
        ["gcloud", "scheduler", "jobs", "create", "http", "fnkit-sweeper-digest", *common,
         "--schedule", "0 7 * * 1", "--time-zone", "Europe/Paris", "--uri", f"{url}/digest",
         "--http-method", "POST", "--oidc-service-account-email", account,
         "--oidc-token-audience", url],
        ["gcloud", "scheduler", "jobs", "delete", "fnkit-sweeper-old-report", *common, "--quiet"],
    ]  # fmt: skip
    assert "fnkit-sweeper-old-report has no route any more" in err
    yaml_file = project / "build" / "deploy" / "sweeper.env.yaml"
    assert _yaml(yaml_file) == {"SCHEDULER_AUDIENCE": url, "SCHEDULER_SERVICE_ACCOUNT": account}
    assert lines[0][-2:] == ["--env-vars-file", "build/deploy/sweeper.env.yaml"]


def test_without_settings_the_dry_run_warns_as_on_a_first_deploy(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fnkit_main(["deploy", "health", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("gcloud functions deploy health ")
    text = " ".join(err.split())
    assert "health needs SUPABASE_URL, DATABASE_URL, UPSTASH_REDIS_REST_URL," in text
    assert "as on a first deploy, it would fail at cold start" in text
    assert "--env-file FILE" in text and "--secret NAME=SECRET:VERSION" in text
