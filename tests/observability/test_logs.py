"""JSON logs: one correlation id from the submit through every step to the simulator; secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from rq.job import Job as RQJob

from core.jobs import get_job, submit_job
from core.logs import configure_logging, get_logger, user_action
from core.pipeline import STEPS
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user


@pytest.fixture
def captured(settings) -> Iterator[io.StringIO]:
    """The product's own logging setup, writing into a buffer; the previous setup is restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buf = io.StringIO()
    configure_logging("test", level="INFO", json=True, secrets=settings.secrets, stream=buf)
    yield buf
    root.handlers, root.level = saved
    structlog.reset_defaults()


def _lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]


def test_one_correlation_id_follows_a_job_from_submit_to_the_simulator(deps, sim, captured):
    alice = make_user(deps)
    with user_action("submit") as corr:
        job = submit_job(deps, alice, "A sea shanty about a lighthouse cat")
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    detail = get_job(deps, alice, job.id)
    assert detail.correlation_id == corr, "stored on the job and shown on its detail"

    lines = _lines(captured)
    submitted = [ln for ln in lines if ln["event"] == "job_submitted"]
    assert submitted and submitted[0]["correlation_id"] == corr
    ours = [ln for ln in lines if ln.get("job_id") == str(job.id)]
    assert ours and all(ln.get("correlation_id") == corr for ln in ours), "every line of every step"
    started = {ln["step"] for ln in ours if ln["event"] == "step_started"}
    finished = {ln["step"] for ln in ours if ln["event"] == "step_finished"}
    assert started == finished == set(STEPS)
    assert all(ln["service"] == "test" and "timestamp" in ln for ln in ours)

    with deps.sessionmaker() as s:
        from core.models import Job

        rq_id = s.get(Job, job.id).rq_job_id
    assert RQJob.fetch(rq_id, connection=deps.redis).meta["correlation_id"] == corr, "carried in RQ meta"

    seen = sim_control(sim, "/_sim/requests", method="GET")["requests"]
    endpoints = {r["endpoint"] for r in seen if r["request_id"] == corr}
    assert {"chat", "suno_generate", "suno_poll", "image_create", "image_poll"} <= endpoints
    assert all(r["request_id"] == corr for r in seen if r["endpoint"] in ("chat", "suno_generate"))


def test_the_logging_setup_redacts_every_key_and_password(settings, captured):
    keys = settings.secrets
    assert len(keys) == 3
    log = get_logger("songsmith.test")
    log.info(
        "provider_call",
        message=f"sent {keys[0]} and {keys[1]}",
        headers={"Authorization": f"Bearer {keys[2]}", "X-Request-ID": "abc"},
        password="hunter2-secret-pass",
        nested=[{"api_key": "whatever-key"}, f"tail {keys[1]}"],
    )
    logging.getLogger("third.party").warning("raw %s %s password=%s", keys[0], keys[2], "x")
    try:
        raise RuntimeError(f"boom with {keys[2]}")
    except RuntimeError:
        log.exception("crashed")
    out = captured.getvalue()
    for secret in [*keys, "hunter2-secret-pass", "whatever-key"]:
        assert secret not in out
    assert out.count("[REDACTED]") >= 6
    first = _lines(captured)[0]
    assert first["password"] == "[REDACTED]" and first["headers"]["X-Request-ID"] == "abc"
