"""The model list: from OpenRouter (the simulator) through the real client, cached, searchable, fallback."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core.deps import build_dependencies
from core.errors import UserError
from core.jobs import submit_job
from core.model_catalog import (
    choose_model,
    current_setting,
    load_catalog,
    search,
    set_default_model,
)
from core.models import AppSetting, Job, User
from tests.conftest import sim_control
from tests.factories import make_user

MODELS_DOWN = {"faults": [{"endpoint": "models", "kind": "status", "status": 503, "times": -1}]}


def _model_requests(sim) -> int:
    return sum(
        1 for r in sim_control(sim, "/_sim/stats", method="GET")["requests"] if r["endpoint"] == "models"
    )


def test_the_list_comes_from_openrouter_with_context_and_prices(deps, sim):
    catalog = load_catalog(deps)
    assert not catalog.fallback and catalog.message == ""
    gpt4o = next(m for m in catalog.models if m.id == "openai/gpt-4o")
    assert gpt4o.name == "OpenAI: GPT-4o" and gpt4o.context_length == 128000
    assert gpt4o.prompt_per_million == Decimal("2.5") and gpt4o.completion_per_million == Decimal("10")
    assert len(catalog.models) >= 5


def test_the_list_is_cached_in_redis_until_its_ttl(deps, sim):
    first = load_catalog(deps)
    assert load_catalog(deps) == first
    assert _model_requests(sim) == 1
    key = f"{deps.settings.queue_prefix}:models:v1"
    assert 0 < deps.redis.ttl(key) <= deps.settings.models_cache_ttl_seconds
    load_catalog(deps, refresh=True)
    assert _model_requests(sim) == 2
    deps.redis.delete(key)  # the TTL ran out
    load_catalog(deps)
    assert _model_requests(sim) == 3


def test_an_unreachable_endpoint_gives_the_fallback_list_and_says_so(deps, sim):
    sim_control(sim, "/_sim/faults", MODELS_DOWN)
    catalog = load_catalog(deps)
    assert catalog.fallback and "fallback" in catalog.message
    assert [m.id for m in catalog.models] == deps.settings.fallback_models
    ttl = deps.redis.ttl(f"{deps.settings.queue_prefix}:models:v1")
    assert 0 < ttl <= deps.settings.models_fallback_ttl_seconds
    sim_control(sim, "/_sim/reset")
    assert load_catalog(deps).fallback, "the short fallback cache is still in force"
    recovered = load_catalog(deps, refresh=True)
    assert not recovered.fallback and len(recovered.models) > len(catalog.models)


def test_with_no_cache_ttl_every_load_asks_again(settings, sim):
    deps = build_dependencies(settings.model_copy(update={"models_cache_ttl_seconds": 0}))
    try:
        deps.redis.flushdb()
        load_catalog(deps)
        load_catalog(deps)
        assert _model_requests(sim) == 2
    finally:
        deps.redis.flushdb()
        deps.close()


def test_search_matches_every_word_in_id_or_name(deps, sim):
    catalog = load_catalog(deps)
    assert {m.id for m in search(catalog, "CLAUDE haiku")} == {"anthropic/claude-3.5-haiku"}
    assert all("gemini" in m.id for m in search(catalog, "gemini")) and search(catalog, "gemini")
    assert search(catalog, "") == catalog.models
    assert search(catalog, "no-such-model-anywhere") == []


def test_a_user_saves_a_listed_model_and_new_jobs_record_it(deps, sim):
    alice, bob = make_user(deps), make_user(deps, "bob")
    assert current_setting(deps, alice).is_default
    saved = choose_model(deps, alice, "anthropic/claude-3.5-haiku")
    assert (saved.model, saved.is_default) == ("anthropic/claude-3.5-haiku", False)
    with deps.sessionmaker() as s:
        assert s.get(User, alice.id).openrouter_model == "anthropic/claude-3.5-haiku"
    mine, theirs = submit_job(deps, alice, "a song"), submit_job(deps, bob, "another song")
    assert mine.llm_model == "anthropic/claude-3.5-haiku"
    assert theirs.llm_model == deps.settings.openrouter_default_model
    assert choose_model(deps, alice, None).is_default


@pytest.mark.parametrize("bad", ["made-up/model", "", "   ", "x" * 300])
def test_a_model_not_in_the_list_is_refused_and_nothing_changes(deps, sim, bad):
    alice = make_user(deps)
    choose_model(deps, alice, "openai/gpt-4o")
    with pytest.raises(UserError):
        choose_model(deps, alice, bad)
    assert current_setting(deps, alice).model == "openai/gpt-4o"


def test_only_admins_set_the_default_for_users_without_a_choice(deps, sim):
    admin, alice = make_user(deps, "root", admin=True), make_user(deps)
    with pytest.raises(UserError, match="admin"):
        set_default_model(deps, alice, "google/gemini-2.5-flash")
    set_default_model(deps, admin, "google/gemini-2.5-flash")
    set_default_model(deps, admin, "google/gemini-2.5-pro")  # an update, not a second row
    with deps.sessionmaker() as s:
        assert [r.value for r in s.scalars(select(AppSetting))] == ["google/gemini-2.5-pro"]
    assert current_setting(deps, alice).model == "google/gemini-2.5-pro"
    job = submit_job(deps, alice, "a song")
    with deps.sessionmaker() as s:
        assert s.get(Job, job.id).llm_model == "google/gemini-2.5-pro"
