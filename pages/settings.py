"""This user's LLM model from OpenRouter's list (searchable, context and prices); admins set the default."""

from __future__ import annotations

import streamlit as st

from core.model_catalog import (
    ModelEntry,
    choose_model,
    current_setting,
    load_catalog,
    search,
    set_default_model,
)
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.widgets import guarded

actor = require_actor()
deps = get_dependencies()
st.title("Settings")


def _price(value) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _rows(models: list[ModelEntry]) -> list[dict[str, object]]:
    return [
        {
            "Model": m.id,
            "Name": m.name,
            "Context": f"{m.context_length:,}" if m.context_length else "—",
            "Prompt $/M tokens": _price(m.prompt_per_million),
            "Completion $/M tokens": _price(m.completion_per_million),
        }
        for m in models
    ]


setting = guarded(lambda: current_setting(deps, actor))
if setting is None:
    st.stop()
st.subheader("LLM model")
summary = st.empty()  # filled at the end, so it shows what was just saved

refresh = st.button("Reload the list", key="settings.refresh", icon=":material/refresh:")
catalog = guarded(lambda: load_catalog(deps, refresh=refresh))
if catalog is None:
    st.stop()
if catalog.fallback:
    st.warning(catalog.message)

query = st.text_input("Search models", key="settings.search", placeholder="e.g. claude, gemini flash")
matches = search(catalog, query)
st.caption(f"{len(matches)} of {len(catalog.models)} models")
st.dataframe(_rows(matches), hide_index=True, width="stretch", height=min(400, 38 + 35 * len(matches)))

ids = [m.id for m in matches]
if not ids:
    st.info("No model matches that search.")
else:
    # The search narrows the list, never the current value: a box must not silently show another model.
    mine = ids if setting.model in ids else [setting.model, *ids]
    picked = st.selectbox(
        "Model for my new jobs", mine, index=mine.index(setting.model), key="settings.model"
    )
    left, right = st.columns(2)
    if left.button("Save my model", key="settings.save", type="primary"):
        saved = guarded(lambda: choose_model(deps, actor, picked))
        if saved is not None:
            st.success(f"Saved: new jobs will use {saved.model}.")
    if not setting.is_default and right.button("Use the team default", key="settings.reset"):
        saved = guarded(lambda: choose_model(deps, actor, None))
        if saved is not None:
            st.success(f"Saved: new jobs will use the team default, {saved.model}.")

if actor.is_admin and ids:
    st.subheader("Team default (admin)")
    st.caption(f"Users who have not picked a model get **{setting.default_model}**.")
    team = ids if setting.default_model in ids else [setting.default_model, *ids]
    default_pick = st.selectbox(
        "Default model", team, index=team.index(setting.default_model), key="settings.default_model"
    )
    if st.button("Save the default", key="settings.save_default"):
        saved_default = guarded(lambda: set_default_model(deps, actor, default_pick))
        if saved_default is not None:
            st.success(f"Saved: the team default is now {saved_default}.")

now = guarded(lambda: current_setting(deps, actor)) or setting
summary.markdown(
    f"New jobs use **{now.model}**"
    + (" (the team default)." if now.is_default else f". The team default is {now.default_model}.")
)
