"""Journeys through the running product in a real browser: what a user sees, asserted on the page."""

from __future__ import annotations

import csv
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


def test_a_faulted_job_fails_at_the_named_step_and_retry_from_there_completes_it(
    page: Page, live: RunningStack, users
):
    alice = users["alice"]
    live.sim(
        "/_sim/faults", {"faults": [{"endpoint": "suno_generate", "kind": "task_sensitive", "times": 1}]}
    )
    h.login(page, live.url, alice.username, PASSWORD)
    h.submit_concept(page, h.captions(3)[2])
    h.wait_for_status(page, "failed")

    alert = h.main(page).locator('[data-testid="stAlert"]').filter(has_text="Failed at")
    expect(alert).to_contain_text("render_audio")
    expect(alert).to_contain_text(re.compile("sensitive", re.IGNORECASE))
    assert "Traceback" not in h.main(page).inner_text()
    retry = page.get_by_role("button", name="Retry", exact=True)
    if not retry.count():
        pytest.skip("waits for issue 5: retry")
    before = live.sim("/_sim/stats", method="GET")["submissions"]

    expect(h.main(page).get_by_text(re.compile(r"From the failed step"))).to_be_visible()
    retry.click()
    h.wait_for_status(page, "completed")

    after = live.sim("/_sim/stats", method="GET")["submissions"]
    assert after["llm"] - before["llm"] == 1, "retry from the failed step re-wrote the song options"
    assert after["music"] - before["music"] == 1 and after["image"] - before["image"] == 1
    assert h.metric_value(page, "Attempt") == "2"
    assert h.audio_duration(page) > 0


def test_a_csv_of_twenty_captions_becomes_a_batch_that_finishes_with_a_results_csv(
    page: Page, live: RunningStack, users, tmp_path
):
    alice = users["alice"]
    live.sim("/_sim/config", {"latency": {"llm": 0.05, "music": 0.3, "image": 0.2}})
    source = tmp_path / "captions.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["caption"])
        writer.writerows([c] for c in h.captions(20))
    h.login(page, live.url, alice.username, PASSWORD)
    h.feature_page(page, "New batch", "Batch", issue="issue 6: batches")

    main = h.main(page)
    main.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(source))
    expect(main.get_by_text("20 rows", exact=False).first).to_be_visible()
    h.wait_idle(page)
    assert h.metric_value(page, "Rows") == "20"
    assert h.grid_total_rows(page, "Concept") == 20
    page.get_by_role("button", name="Create 20 jobs").click()
    expect(main.get_by_text("Batch created: 20 jobs queued.")).to_be_visible()
    page.get_by_role("link", name="Follow the batch").click()

    bar = main.locator('[data-testid="stProgress"] [role="progressbar"]').first
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=150_000)
    h.wait_idle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download results")).click()
    with open(download.value.path(), newline="", encoding="utf-8-sig") as f:
        results = list(csv.DictReader(f))
    assert len(results) == 20
    assert {r.get("status") or r.get("Status") for r in results} == {"completed"}


def test_choosing_another_model_in_settings_makes_the_next_job_use_it(page: Page, live: RunningStack, users):
    bob = users["bob"]
    h.login(page, live.url, bob.username, PASSWORD)
    h.feature_page(page, "Settings", issue="issue 4: the LLM model setting")
    current = live.deps.settings.openrouter_default_model

    chosen = h.pick_selectbox_option(page, "Model for my new jobs", avoid=current)
    page.get_by_role("button", name="Save my model").click()
    expect(h.main(page).get_by_text(f"Saved: new jobs will use {chosen}.")).to_be_visible()

    h.submit_concept(page, h.captions(4)[3])
    model_line = h.main(page).locator('[data-testid="stCaptionContainer"]').filter(has_text="Model:")
    expect(model_line.first).to_contain_text(chosen, timeout=20_000)
    h.wait_for_status(page, "completed")
    assert chosen in live.sim("/_sim/stats", method="GET")["models_requested"]
    rows = h.table_with(page, "Step", "Service")
    assert any(r["Service"] == f"OpenRouter · {chosen}" for r in rows), rows


def test_every_metrics_chart_renders_with_data_points(page: Page, live: RunningStack, users, finished_jobs):
    assert sorted(finished_jobs.values()) == ["completed", "failed"]
    alice = users["alice"]
    h.login(page, live.url, alice.username, PASSWORD)
    h.feature_page(page, "Metrics", issue="issue 7: the metrics page")

    expect(h.main(page).locator('[data-testid="stPlotlyChart"]').first).to_be_visible(timeout=60_000)
    h.wait_idle(page)
    points = h.plotly_points(page)
    assert points, "no Plotly chart on the Metrics page"
    assert all(n > 0 for n in points), f"a chart rendered without data points: {points}"
    assert "Something went wrong" not in h.main(page).inner_text()
