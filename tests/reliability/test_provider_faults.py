"""One test per fault kind at each step where it applies: final state, failed step, message, paid calls."""

from __future__ import annotations

from typing import Any

import pytest

from core.jobs import get_job, submit_job
from core.pipeline import STEPS
from tests.conftest import override_deps, run_until_done, sim_control
from tests.factories import make_user

CONCEPT = "A slow acoustic folk ballad about a lighthouse keeper and the sea"


def run_one(deps, sim, faults: list[dict[str, Any]], *, timeout: float = 40.0):
    if faults:
        sim_control(sim, "/_sim/faults", {"faults": faults})
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    run_until_done(deps, [job.id], timeout=timeout)
    detail = get_job(deps, alice, job.id)
    stats = sim_control(sim, "/_sim/stats", method="GET")
    return detail, stats["submissions"]


def assert_nothing_lost(detail) -> None:
    """Every step that ran has its event, none is left open, and a completed job has both files."""
    assert all(r.finished_at is not None for r in detail.steps)
    if detail.status == "completed":
        assert [r.step for r in detail.steps if r.status == "succeeded"] == list(STEPS)
        assert detail.audio is not None and detail.image is not None


# Transient faults: the step retries and the job completes, with one paid task per remote step.
RECOVERS = [
    ("chat-429-retry-after", [{"endpoint": "chat", "kind": "status", "status": 429, "retry_after": 0}], 0),
    ("chat-500-twice", [{"endpoint": "chat", "kind": "status", "status": 500, "times": 2}], 0),
    ("chat-502", [{"endpoint": "chat", "kind": "status", "status": 502}], 0),
    ("chat-503", [{"endpoint": "chat", "kind": "status", "status": 503}], 0),
    ("chat-504", [{"endpoint": "chat", "kind": "status", "status": 504}], 0),
    ("chat-408", [{"endpoint": "chat", "kind": "status", "status": 408}], 0),
    ("chat-drop", [{"endpoint": "chat", "kind": "drop"}], 0),
    ("chat-malformed-json", [{"endpoint": "chat", "kind": "malformed_json"}], 0),
    ("chat-slow-timeout", [{"endpoint": "chat", "kind": "slow", "seconds": 3}], 0),
    ("chat-error-in-200", [{"endpoint": "chat", "kind": "llm_error_in_200", "code": 502}], 0),
    ("chat-empty", [{"endpoint": "chat", "kind": "llm_empty"}], 0),
    ("llm-prose-around-json", [{"endpoint": "chat", "kind": "llm_prose_around_json"}], 0),
    ("llm-not-json-once-repaired", [{"endpoint": "chat", "kind": "llm_not_json"}], 0),
    ("llm-missing-fields-repaired", [{"endpoint": "chat", "kind": "llm_missing_fields"}], 0),
    ("llm-zero-options-repaired", [{"endpoint": "chat", "kind": "llm_zero_options"}], 0),
    ("llm-wrong-types-repaired", [{"endpoint": "chat", "kind": "llm_wrong_types"}], 0),
    (
        "image-prompt-not-json-repaired",
        [{"endpoint": "chat", "kind": "llm_not_json", "match": "image_prompt"}],
        0,
    ),
    ("suno-rate-limited-429", [{"endpoint": "suno_generate", "kind": "body_code", "code": 429}], 0),
    ("suno-generate-http-503", [{"endpoint": "suno_generate", "kind": "status", "status": 503}], 0),
    ("suno-generate-drop-before", [{"endpoint": "suno_generate", "kind": "drop"}], 0),
    ("suno-poll-503", [{"endpoint": "suno_poll", "kind": "status", "status": 503, "times": 2}], 0),
    ("suno-poll-drop", [{"endpoint": "suno_poll", "kind": "drop"}], 0),
    ("suno-poll-malformed", [{"endpoint": "suno_poll", "kind": "malformed_json"}], 0),
    ("suno-unknown-status", [{"endpoint": "suno_generate", "kind": "task_unknown_status", "polls": 3}], 0),
    ("suno-maintenance-455-short", [{"endpoint": "suno_poll", "kind": "body_code", "code": 500}], 0),
    (
        "image-create-429",
        [{"endpoint": "image_create", "kind": "status", "status": 429, "retry_after": 0}],
        0,
    ),
    ("image-poll-500", [{"endpoint": "image_poll", "kind": "status", "status": 500}], 0),
    ("image-poll-unknown", [{"endpoint": "image_create", "kind": "task_unknown_status", "polls": 2}], 0),
    ("audio-file-503", [{"endpoint": "audio_file", "kind": "status", "status": 503}], 0),
    ("image-file-drop", [{"endpoint": "image_file", "kind": "drop"}], 0),
]


@pytest.mark.parametrize(("name", "faults", "_"), RECOVERS, ids=[r[0] for r in RECOVERS])
def test_transient_faults_are_retried_and_the_job_completes(deps, sim, name, faults, _):
    detail, paid = run_one(deps, sim, faults)
    assert detail.status == "completed", detail.error_message
    assert paid["music"] == 1 and paid["image"] == 1, "a remote task is paid for once"
    assert_nothing_lost(detail)
    if name in ("chat-500-twice", "chat-503", "chat-408", "chat-drop", "suno-poll-503", "image-poll-500"):
        assert any(e.kind == "retry" for e in detail.events), "the retry is on the timeline"


def test_an_llm_repair_is_one_extra_call_and_the_usage_is_recorded(deps, sim):
    detail, paid = run_one(deps, sim, [{"endpoint": "chat", "kind": "llm_not_json"}])
    assert detail.status == "completed"
    assert paid["llm"] == 3, "options (bad) + repair + image prompt"
    assert detail.llm_usage and detail.llm_usage["calls"] == 2
    assert detail.llm_model_used == detail.llm_model


# Permanent faults: the step fails at once with a message the user can act on; nothing later runs.
FAILS = [
    (
        "chat-401",
        "write_options",
        [{"endpoint": "chat", "kind": "status", "status": 401, "times": -1}],
        "API key",
    ),
    (
        "chat-402",
        "write_options",
        [{"endpoint": "chat", "kind": "status", "status": 402, "times": -1}],
        "credits",
    ),
    (
        "chat-403",
        "write_options",
        [{"endpoint": "chat", "kind": "status", "status": 403, "times": -1}],
        "OpenRouter",
    ),
    (
        "chat-400",
        "write_options",
        [{"endpoint": "chat", "kind": "status", "status": 400, "times": -1}],
        "rejected",
    ),
    (
        "llm-not-json-twice",
        "write_options",
        [{"endpoint": "chat", "kind": "llm_not_json", "times": 2}],
        "invalid",
    ),
    (
        "llm-zero-options-twice",
        "write_options",
        [{"endpoint": "chat", "kind": "llm_zero_options", "times": 2}],
        "invalid",
    ),
    (
        "chat-503-forever",
        "write_options",
        [{"endpoint": "chat", "kind": "status", "status": 503, "times": -1}],
        "attempts",
    ),
    (
        "image-prompt-401",
        "write_image_prompt",
        [{"endpoint": "chat", "kind": "status", "status": 401, "times": -1, "match": "image_prompt"}],
        "API key",
    ),
    (
        "suno-no-credits",
        "render_audio",
        [{"endpoint": "suno_generate", "kind": "body_code", "code": 402}],
        "credits",
    ),
    (
        "suno-401",
        "render_audio",
        [{"endpoint": "suno_generate", "kind": "status", "status": 401}],
        "SUNO_API_KEY",
    ),
    ("suno-task-failed", "render_audio", [{"endpoint": "suno_generate", "kind": "task_fail"}], ""),
    (
        "suno-sensitive",
        "render_audio",
        [{"endpoint": "suno_generate", "kind": "task_sensitive"}],
        "sensitive",
    ),
    (
        "suno-empty-result",
        "render_audio",
        [{"endpoint": "suno_generate", "kind": "task_empty_result"}],
        "no audio",
    ),
    (
        "audio-404",
        "render_audio",
        [{"endpoint": "audio_file", "kind": "status", "status": 404, "times": -1}],
        "404",
    ),
    (
        "audio-oversized",
        "render_audio",
        [{"endpoint": "audio_file", "kind": "oversized", "size_mb": 2, "times": -1}],
        "",
    ),
    (
        "audio-wrong-type",
        "render_audio",
        [{"endpoint": "audio_file", "kind": "wrong_content_type", "times": -1}],
        "",
    ),
    ("audio-corrupt", "render_audio", [{"endpoint": "audio_file", "kind": "corrupt", "times": -1}], "valid"),
    (
        "image-no-credits",
        "render_cover",
        [{"endpoint": "image_create", "kind": "body_code", "code": 402}],
        "credits",
    ),
    ("image-task-failed", "render_cover", [{"endpoint": "image_create", "kind": "task_fail"}], ""),
    (
        "image-empty-result",
        "render_cover",
        [{"endpoint": "image_create", "kind": "task_empty_result"}],
        "no image",
    ),
    (
        "image-404",
        "render_cover",
        [{"endpoint": "image_file", "kind": "status", "status": 404, "times": -1}],
        "404",
    ),
    ("image-corrupt", "render_cover", [{"endpoint": "image_file", "kind": "corrupt", "times": -1}], "valid"),
]


@pytest.mark.parametrize(("name", "step", "faults", "words"), FAILS, ids=[f[0] for f in FAILS])
def test_permanent_faults_fail_the_step_with_an_actionable_message(
    deps, sim, settings, name, step, faults, words
):
    with override_deps(deps, download_max_bytes=1_000_000) as small_cap:
        detail, paid = run_one(small_cap, sim, faults)
    assert detail.status == "failed"
    assert detail.error_step == step
    assert detail.error_message and words.lower() in detail.error_message.lower()
    assert "sim-" not in detail.error_message, "no key in the message"
    assert [r.step for r in detail.steps] == list(STEPS[: STEPS.index(step) + 1]), "no later step ran"
    assert paid["music"] <= 1 and paid["image"] <= 1
    assert_nothing_lost(detail)


def test_a_transient_fault_past_the_budget_names_provider_status_and_attempts(deps, sim):
    detail, paid = run_one(deps, sim, [{"endpoint": "chat", "kind": "status", "status": 503, "times": -1}])
    budget = deps.settings.step_retry_budget
    assert detail.error_message.startswith(
        f"OpenRouter kept failing after {budget + 1} attempts (last: HTTP 503)"
    )
    chats = [
        r
        for r in sim_control(sim, "/_sim/requests?limit=500", method="GET")["requests"]
        if r["endpoint"] == "chat"
    ]
    assert len(chats) == budget + 1
    assert sum(1 for e in detail.events if e.kind == "retry") == budget


def test_a_task_that_never_finishes_fails_at_its_deadline(deps, sim, settings):
    with override_deps(deps, music_deadline_seconds=1.0) as short:
        detail, paid = run_one(short, sim, [{"endpoint": "suno_generate", "kind": "task_never_finishes"}])
    assert detail.status == "failed" and detail.error_step == "render_audio"
    assert "did not finish the task within" in detail.error_message
    assert paid["music"] == 1


def test_a_check_delayed_past_the_deadline_still_keeps_a_finished_task(deps, sim):
    """A backlog (thousands of jobs ahead in the queue) can hold the first check past the deadline: the
    song the user paid for is finished by then and must be kept, not failed unseen."""
    sim_control(sim, "/_sim/config", {"latency": {"music": 0, "image": 0}})
    with override_deps(deps, music_deadline_seconds=0.01, image_deadline_seconds=0.01) as late:
        detail, paid = run_one(late, sim, [])
    assert detail.status == "completed", detail.error_message
    assert paid["music"] == 1 and paid["image"] == 1


def test_past_the_deadline_an_unreachable_provider_fails_with_the_deadline(deps, sim):
    fault = {"endpoint": "suno_poll", "kind": "status", "status": 503, "times": -1}
    with override_deps(deps, music_deadline_seconds=0.01) as late:
        detail, _ = run_one(late, sim, [fault])
    assert detail.status == "failed" and detail.error_step == "render_audio"
    assert "did not finish the task within" in detail.error_message


def test_an_ambiguous_submit_is_resubmitted_at_most_once(deps, sim):
    """A 500 after the task was created: the contract allows one resubmit (a possible double charge)."""
    fault = {
        "endpoint": "suno_generate",
        "kind": "status",
        "status": 500,
        "after_processing": True,
        "times": -1,
    }
    detail, paid = run_one(deps, sim, [fault])
    assert detail.status == "failed" and detail.error_step == "render_audio"
    assert paid["music"] == 2, "the first try plus exactly one resubmit"
    assert "avoid paying twice" in detail.error_message
