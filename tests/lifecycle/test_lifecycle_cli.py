"""`python -m core.cli retry|cancel` over the same services, acting as the named user."""

from __future__ import annotations

import json

from core.cli import main
from core.jobs import get_job, submit_job
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user


def use_settings_env(settings, monkeypatch) -> None:
    for name, value in settings.model_dump().items():
        if value is not None:
            raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            monkeypatch.setenv(name.upper(), str(raw))


def test_cli_retry_and_cancel(deps, sim, settings, monkeypatch, capsys):
    use_settings_env(settings, monkeypatch)
    alice = make_user(deps)
    sim_control(sim, "/_sim/faults", {"faults": [{"endpoint": "chat", "kind": "status", "status": 401}]})
    job = submit_job(deps, alice, "A calypso about a lost key")
    assert run_until_done(deps, [job.id]) == {str(job.id): "failed"}
    capsys.readouterr()  # drop log lines printed before the CLI configured logging

    assert main(["--user", "alice", "retry", str(job.id), "--from-start", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["retried"] is True and printed["attempt"] == 2
    assert printed["current_step"] == "write_options"
    assert main(["--user", "alice", "retry", str(job.id)]) == 1
    assert "only failed or cancelled" in capsys.readouterr().out

    assert main(["--user", "alice", "cancel", str(job.id)]) == 0
    assert capsys.readouterr().out.startswith("Cancelled")
    assert get_job(deps, alice, job.id).status == "cancelled"
    assert main(["--user", "mallory", "cancel", str(job.id)]) == 1
    assert "Job not found." in capsys.readouterr().err
