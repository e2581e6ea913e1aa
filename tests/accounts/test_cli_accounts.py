"""`python -m core.cli create-user` and the CLI's owner checks."""

from __future__ import annotations

import io
import sys

import pytest
from sqlalchemy import select

from core import cli
from core.auth import authenticate
from core.models import User
from tests.accounts.helpers import SECRET_CONCEPT, owned_job
from tests.factories import make_user


@pytest.fixture
def cli_env(settings, deps, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("ARTIFACT_DIR", str(settings.artifact_dir))
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "8192")
    return deps


def test_create_user_reads_the_password_from_stdin(cli_env, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("piped-password-1\n"))
    assert cli.main(["create-user", "Ana", "--admin"]) == 0
    assert "created admin 'Ana'" in capsys.readouterr().out
    actor = authenticate(cli_env, "ana", "piped-password-1")
    assert actor.is_admin
    with cli_env.sessionmaker() as s:
        assert "piped-password-1" not in s.scalars(select(User.password_hash)).one()


def test_create_user_refuses_a_taken_name_or_short_password(cli_env, monkeypatch, capsys):
    make_user(cli_env, "ana")
    monkeypatch.setattr(sys, "stdin", io.StringIO("long-enough-pw\n"))
    assert cli.main(["create-user", "ANA"]) == 1
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.main(["create-user", "bea"]) == 1
    err = capsys.readouterr().err
    assert "taken" in err and "8 characters" in err and "short" not in err.replace("8 characters", "")


def test_the_cli_cannot_show_another_users_job(cli_env, capsys):
    alice = make_user(cli_env, "alice")
    make_user(cli_env, "mallory")
    owned = owned_job(cli_env, alice)
    assert cli.main(["--user", "mallory", "status", str(owned.job_id), "--json"]) == 1
    captured = capsys.readouterr()
    assert "Job not found." in captured.err
    assert SECRET_CONCEPT not in captured.out + captured.err
    assert cli.main(["--user", "alice", "status", str(owned.job_id), "--json"]) == 0
    assert SECRET_CONCEPT in capsys.readouterr().out


def test_set_password_replaces_the_old_one_and_signs_the_user_out(cli_env, monkeypatch, capsys):
    from core.sessions import resume_session, start_session

    ana = make_user(cli_env, "ana", password="first-password")
    token = start_session(cli_env, ana)
    monkeypatch.setattr(sys, "stdin", io.StringIO("second-password\n"))
    assert cli.main(["set-password", "ANA"]) == 0
    assert "new password set for 'ana'" in capsys.readouterr().out
    assert authenticate(cli_env, "ana", "second-password").id == ana.id
    with pytest.raises(cli.UserError):
        authenticate(cli_env, "ana", "first-password")
    assert resume_session(cli_env, token) is None, "the old sessions ended"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.main(["set-password", "ana"]) == 1
    monkeypatch.setattr(sys, "stdin", io.StringIO("long-enough-pw\n"))
    assert cli.main(["set-password", "nobody"]) == 1
    assert "No user named 'nobody'" in capsys.readouterr().err
