"""The supabase-py suite runner's bookkeeping: which failures are out of scope, and the counts
read back from pytest's JUnit report. (Running the suite itself takes minutes and four fixed
ports: `python -m fnkit.local.auth.suite --tests <supabase-py>/src/auth/tests`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from fnkit.local.auth.mail import Inbox
from fnkit.local.auth.suite import _out_of_scope, _outcomes, main

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="s._sync.test_gotrue" name="test_sign_in_with_password" time="0.1"/>
  <testcase classname="s._sync.test_gotrue_admin_api" name="test_sign_in_with_otp_phone">
    <failure message="AuthApiError: Phone logins are disabled">trace</failure></testcase>
  <testcase classname="s._sync.test_gotrue_admin_api" name="test_resend">
    <failure message="AuthApiError: Missing one of these types">trace</failure></testcase>
  <testcase classname="s._sync.test_gotrue" name="test_mfa_enroll">
    <error message="AssertionError: boom&#10;more">trace</error></testcase>
  <testcase classname="s._sync.test_gotrue" name="test_later"><skipped message="why"/></testcase>
</testsuite></testsuites>
"""


def test_failures_are_sorted_into_out_of_scope_and_real(tmp_path: Path) -> None:
    assert _out_of_scope("test_create_oauth_client") == "OAuth providers and server"
    assert _out_of_scope("test_resend") == "phone/SMS"
    assert _out_of_scope("test_mfa_enroll") is None
    report = tmp_path / "report.xml"
    report.write_text(REPORT, encoding="utf-8")
    outcomes = {o.name.split("::")[1]: o for o in _outcomes(report)}
    assert outcomes["test_sign_in_with_password"].status == "passed"
    assert outcomes["test_sign_in_with_otp_phone"].status == "out-of-scope"
    assert outcomes["test_resend"].detail.startswith("phone/SMS: AuthApiError")
    assert outcomes["test_mfa_enroll"].status == "failed"
    assert outcomes["test_mfa_enroll"].detail == "AssertionError: boom"
    assert outcomes["test_later"].status == "skipped"


def test_the_runner_refuses_a_directory_that_is_not_the_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--tests", str(tmp_path)]) == 2
    assert "is not supabase-py's src/auth/tests" in capsys.readouterr().err


def test_the_inbox_keeps_and_announces_each_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = Inbox(tmp_path / "inbox")
    assert inbox.messages() == []
    inbox.deliver(to="A@example.com", subject="s", kind="invite", link="http://l", token="t",
                  otp="123456")  # fmt: skip
    inbox.deliver(to="b@example.com", subject="s", kind="recovery", link="http://m", token="u",
                  otp="654321")  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "[auth mail] invite to A@example.com: http://l (code 123456)",
        "[auth mail] recovery to b@example.com: http://m (code 654321)",
    ]
    assert [m["kind"] for m in inbox.messages()] == ["invite", "recovery"]
    (only,) = inbox.messages("a@example.com")
    assert set(only) == {"id", "to", "subject", "kind", "link", "token", "otp", "created_at"}
    assert len(list((tmp_path / "inbox").glob("*.json"))) == 2
