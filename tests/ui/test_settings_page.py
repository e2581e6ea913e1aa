"""The Settings page: the model list with context and prices, search, saving, fallback, admin default."""

from __future__ import annotations

from sqlalchemy import select

from core.models import AppSetting, User
from tests.conftest import sim_control
from tests.factories import make_user


def test_the_page_lists_models_with_context_and_prices_and_searches(open_app, deps, sim):
    alice = make_user(deps)
    at = open_app(alice, "pages/settings.py")
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["Model"] == "openai/gpt-4o"].iloc[0]
    assert (row["Context"], row["Prompt $/M tokens"], row["Completion $/M tokens"]) == (
        "128,000",
        "$2.50",
        "$10.00",
    )
    assert not at.warning
    at.text_input(key="settings.search").input("claude").run()
    assert set(at.dataframe[0].value["Model"]) == {
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-3.5-haiku",
    }
    assert not [s for s in at.subheader if "admin" in s.value]


def test_saving_a_model_updates_the_user_and_the_page(open_app, deps, sim):
    alice = make_user(deps)
    at = open_app(alice, "pages/settings.py")
    at.selectbox(key="settings.model").select("google/gemini-2.5-flash")
    at.button(key="settings.save").click().run()
    assert not at.exception
    assert "gemini-2.5-flash" in at.success[0].value
    assert any("New jobs use **google/gemini-2.5-flash**" in m.value for m in at.markdown)
    with deps.sessionmaker() as s:
        assert s.get(User, alice.id).openrouter_model == "google/gemini-2.5-flash"


def test_an_unreachable_model_list_falls_back_and_says_so(open_app, deps, sim):
    sim_control(sim, "/_sim/faults", {"faults": [{"endpoint": "models", "kind": "drop", "times": -1}]})
    at = open_app(make_user(deps), "pages/settings.py")
    assert not at.exception
    assert "fallback" in at.warning[0].value
    assert list(at.dataframe[0].value["Model"]) == deps.settings.fallback_models


def test_admins_set_the_team_default(open_app, deps, sim):
    root = make_user(deps, "root", admin=True)
    at = open_app(root, "pages/settings.py")
    at.selectbox(key="settings.default_model").select("anthropic/claude-3.5-haiku")
    at.button(key="settings.save_default").click().run()
    assert not at.exception
    with deps.sessionmaker() as s:
        assert s.scalars(select(AppSetting.value)).one() == "anthropic/claude-3.5-haiku"


def test_a_search_that_hides_the_current_models_keeps_them_selected(open_app, deps, sim):
    """Narrowing the list must not swap what a box shows: saving then would change the team default."""
    admin = make_user(deps, "root", admin=True)
    at = open_app(admin, "pages/settings.py")
    default = at.selectbox(key="settings.default_model").value
    assert not default.startswith("anthropic/")
    at.text_input(key="settings.search").input("claude").run()
    assert not at.exception
    assert at.selectbox(key="settings.default_model").value == default
    assert at.selectbox(key="settings.model").value == default
    assert "anthropic/claude-3.5-haiku" in at.selectbox(key="settings.default_model").options
