"""A model change in Settings reaches the provider: the job records it and the simulator is asked for it."""

from __future__ import annotations

from core.jobs import get_job, submit_job
from core.model_catalog import choose_model
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user


def _chat_models(sim) -> list[str]:
    return sim_control(sim, "/_sim/stats", method="GET")["models_requested"]


def test_a_job_after_a_settings_change_uses_the_new_model_end_to_end(deps, sim):
    alice = make_user(deps)
    choose_model(deps, alice, "anthropic/claude-3.5-haiku")
    job = submit_job(deps, alice, "A sea shanty about a lost compass")
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    detail = get_job(deps, alice, job.id)
    assert detail.llm_model == "anthropic/claude-3.5-haiku"
    asked = _chat_models(sim)
    assert asked and set(asked) == {"anthropic/claude-3.5-haiku"}, asked


def test_the_model_chosen_on_the_settings_page_is_used(open_app, deps, sim):
    alice = make_user(deps)
    at = open_app(alice, "pages/settings.py")
    at.selectbox(key="settings.model").select("google/gemini-2.5-pro")
    at.button(key="settings.save").click().run()
    assert not at.exception
    first = submit_job(deps, alice, "A lullaby for a sleepy robot")
    run_until_done(deps, [first.id])
    assert get_job(deps, alice, first.id).llm_model == "google/gemini-2.5-pro"
    assert "google/gemini-2.5-pro" in _chat_models(sim)
    assert deps.settings.openrouter_default_model not in _chat_models(sim)
