"""Job detail: the timeline grouped by attempt (AppTest), the action buttons, and the Gantt figure."""

from __future__ import annotations

from core.jobs import get_job, submit_job
from core.lifecycle import retry_job
from core.models import Job
from core.pipeline import STEP_LABELS
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user
from ui.timeline import build_gantt, service_text

CONCEPT = "A rainy-night jazz ballad about a lighthouse keeper"
PROMPT_FAULT = {"endpoint": "chat", "kind": "status", "status": 400, "times": -1, "match": "image_prompt"}
BLIP = {"endpoint": "suno_generate", "kind": "status", "status": 503, "times": 1}


def failed_then_retried(deps, sim, actor) -> str:
    """Attempt 1: a provider retry on the song, then a failure at the image prompt; attempt 2 completes."""
    sim_control(sim, "/_sim/faults", {"faults": [BLIP, PROMPT_FAULT]})
    job = submit_job(deps, actor, CONCEPT)
    assert run_until_done(deps, [job.id]) == {str(job.id): "failed"}
    sim_control(sim, "/_sim/faults", method="DELETE")
    assert retry_job(deps, actor, job.id).retried
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    return str(job.id)


def texts(block) -> list[str]:
    return [el.value for el in (*block.markdown, *block.caption, *block.warning, *block.error)]


def test_the_gantt_figure_has_one_bar_per_step_run(deps, sim):
    alice = make_user(deps)
    job = get_job(deps, alice, failed_then_retried(deps, sim, alice))
    fig = build_gantt(job)
    assert [t.name for t in fig.data] == ["Attempt 1", "Attempt 2"]
    assert sum(len(t.x) for t in fig.data) == len(job.steps) == 4 + 3
    bars = [(t.name, y) for t in fig.data for y in t.y]
    again = ("write_image_prompt", "render_cover", "store")
    assert bars[-3:] == [("Attempt 2", STEP_LABELS[s]) for s in again]
    durations = {(r.attempt, r.label): r.duration_seconds * 1000 for r in job.steps}
    for trace in fig.data:
        attempt = int(trace.name.split()[-1])
        for label, width in zip(trace.y, trace.x, strict=True):
            assert abs(width - durations[(attempt, label)]) < 1, "bar widths come from job_events"


def test_service_text_names_the_model_for_llm_and_song_but_not_the_cover(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    run_until_done(deps, [job.id])
    lines = {r.step: service_text(r) for r in get_job(deps, alice, job.id).steps}
    assert lines["write_options"].startswith("OpenRouter · ")
    assert lines["render_audio"].startswith("Suno · ")
    assert lines["render_cover"] == "NanoBanana" and lines["store"] == "Songsmith"


def test_job_detail_shows_each_attempts_events_in_order(open_app, deps, sim):
    alice = make_user(deps)
    job_id = failed_then_retried(deps, sim, alice)
    at = open_app(alice, "pages/job.py", query={"id": job_id})
    assert not at.exception
    assert [e.label for e in at.expander if e.label.startswith("Attempt")] == ["Attempt 1", "Attempt 2"]
    first, second = (e for e in at.expander if e.label.startswith("Attempt"))
    one = texts(first)
    steps_one = [t for t in one if t.startswith("**") and " — " in t]
    assert steps_one == [
        "**✅ Song options (LLM)** — succeeded",
        "**✅ Choose an option** — succeeded",
        "**✅ Song (Suno)** — succeeded",
        "**❌ Image prompt (LLM)** — failed",
    ]
    assert any("Suno retry 1 (HTTP 503)" in t for t in one), "provider retries show with their reason"
    assert any("**pending** by alice — submitted" in t for t in one)
    two = texts(second)
    # Event notes are escaped markdown (ui.widgets.plain): what the browser shows is "write_image_prompt".
    assert any("**pending** by alice — retry from write\\_image\\_prompt" in t for t in two)
    assert [t for t in two if t.startswith("**") and " — " in t] == [
        "**✅ Image prompt (LLM)** — succeeded",
        "**✅ Cover (NanoBanana)** — succeeded",
        "**✅ Store and complete** — succeeded",
    ]
    assert any(t.startswith("Input: “") for t in one), "the song step shows the option it was given"
    assert len(at.get("plotly_chart")) == 1


def test_retry_button_on_a_failed_job_starts_one_new_attempt(open_app, deps, sim):
    alice = make_user(deps)
    sim_control(sim, "/_sim/faults", {"faults": [PROMPT_FAULT]})
    job = submit_job(deps, alice, CONCEPT)
    run_until_done(deps, [job.id])
    sim_control(sim, "/_sim/faults", method="DELETE")
    at = open_app(alice, "pages/job.py", query={"id": str(job.id)})
    assert not at.exception
    assert at.radio(key="job.retry_from").value == "step"
    at.radio(key="job.retry_from").set_value("start")
    at.button[0].click().run()
    assert not at.exception
    assert any("Attempt 2 started from “Song options (LLM)”" in s.value for s in at.success)
    with deps.sessionmaker() as s:
        row = s.get(Job, job.id)
        assert (row.status, row.attempt, row.current_step, row.song_options) == (
            "pending",
            2,
            "write_options",
            None,
        )
    assert deps.queues.interactive.count == 1


def test_cancel_and_regenerate_buttons(open_app, deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    at = open_app(alice, "pages/job.py", query={"id": str(job.id)})
    at.button(key="job.cancel").click().run()
    assert not at.exception
    assert get_job(deps, alice, job.id).status == "cancelled"
    assert at.radio(key="job.retry_from"), "a cancelled job offers Retry"

    done = submit_job(deps, alice, "A polka about a teapot")
    run_until_done(deps, [done.id])
    at = open_app(alice, "pages/job.py", query={"id": str(done.id)})
    at.button(key="job.regen_cover").click().run()
    assert not at.exception
    detail = get_job(deps, alice, done.id)
    assert (detail.status, detail.attempt, detail.current_step) == ("pending", 2, "render_cover")
    run_until_done(deps, [done.id])
    at = open_app(alice, "pages/job.py", query={"id": str(done.id)})
    assert not at.exception
    assert any(s.value == "Previous versions" for s in at.subheader)
    assert any(b.label == "Download cover v1" for b in at.get("download_button"))


def test_jobs_page_bulk_retry_retries_the_selected_failed_jobs(open_app, deps, sim):
    alice = make_user(deps)
    sim_control(sim, "/_sim/faults", {"faults": [{**PROMPT_FAULT, "match": ""}]})
    failed = submit_job(deps, alice, "first song")
    run_until_done(deps, [failed.id])
    sim_control(sim, "/_sim/faults", method="DELETE")
    pending = submit_job(deps, alice, "second song")
    at = open_app(alice, "pages/jobs.py")
    at.toggle(key="jobs.bulk").set_value(True).run()
    assert not at.exception
    at.session_state["jobs.table_bulk"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    assert at.button(key="jobs.bulk_retry").label == "Retry selected failed (1)"
    at.button(key="jobs.bulk_retry").click().run()
    assert not at.exception
    assert any("1 job(s) retried." in s.value for s in at.success)
    assert get_job(deps, alice, failed.id).attempt == 2
    assert get_job(deps, alice, pending.id).attempt == 1
