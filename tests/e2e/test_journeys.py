"""Journeys through the running product in a real browser: what a user sees, asserted on the page."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from core.jobs import get_job, submit_job
from core.pipeline import STEP_LABELS, STEPS
from tests.e2e import helpers as h
from tests.e2e.conftest import PASSWORD, RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The service each step's timeline row names (the part before " · model").
STEP_SERVICES = {
    "write_options": "OpenRouter",
    "choose_option": "Songsmith",
    "render_audio": "Suno",
    "write_image_prompt": "OpenRouter",
    "render_cover": "NanoBanana",
    "store": "Songsmith",
}


def test_submit_a_caption_and_watch_it_finish_with_a_song_that_plays(page: Page, live: RunningStack, users):
    alice = users["alice"]
    caption = h.captions(1)[0]
    h.login(page, live.url, alice.username, PASSWORD)

    h.submit_concept(page, caption)
    h.mark_document(page)
    expect(h.main(page).get_by_text(f"Concept: {caption[:40]}", exact=False)).to_be_visible()
    h.wait_for_status(page, "completed")

    assert h.document_kept(page), "the job page reloaded instead of refreshing in place"
    assert "Failed at" not in h.main(page).inner_text()
    assert h.audio_duration(page) > 0, "the song's <audio> source does not play"
    assert h.image_natural_width(page) > 0, "the cover <img> did not load"
    expect(page.get_by_role("button", name="Download song", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Download cover", exact=True)).to_be_visible()


def test_timeline_lists_every_step_with_its_duration_and_service(page: Page, live: RunningStack, users):
    alice = users["alice"]
    h.login(page, live.url, alice.username, PASSWORD)
    h.submit_concept(page, h.captions(2)[1])
    h.wait_for_status(page, "completed")
    h.wait_idle(page)

    labels = [STEP_LABELS[s] for s in STEPS]
    rows = h.table_with(
        page, "Step", "Duration", "Service", until=lambda rows: {r["Step"] for r in rows} >= set(labels)
    )
    by_label = {r["Step"]: r for r in rows}
    for step in STEPS:
        label = STEP_LABELS[step]
        assert label in by_label, f"timeline has no row for {label}: {rows}"
        row = by_label[label]
        assert h.DURATION.match(row["Duration"]), f"{label}: duration {row['Duration']!r}"
        assert row["Service"].startswith(STEP_SERVICES[step]), f"{label}: service {row['Service']!r}"
    assert by_label[STEP_LABELS["write_options"]]["Service"].startswith("OpenRouter · ")


def test_a_second_user_cannot_open_the_first_users_job_by_its_url(page: Page, live: RunningStack, users):
    alice, bob = users["alice"], users["bob"]
    secret = f"A private lullaby about the violet lighthouse {uuid.uuid4().hex[:8]}"
    job = submit_job(live.deps, alice, secret, idempotency_key=uuid.uuid4().hex)

    h.open_url(page, live.url, f"/job?id={job.id}", bob.username, PASSWORD)
    expect(page.get_by_text(f"Signed in as {bob.username}")).to_be_visible()

    body = h.main(page)
    expect(body.get_by_text("Job not found.")).to_be_visible()
    text = body.inner_text()
    assert secret not in text and "violet lighthouse" not in text
    assert get_job(live.deps, alice, job.id).correlation_id not in page.content()
    assert not re.search(r"Timeline|Song options|Lyrics", text)
