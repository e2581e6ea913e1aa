"""AppTest fixtures: the app reads the test run's settings from the environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import Settings
from core.users import Actor
from ui import state

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture
def app_env(settings: Settings, deps, monkeypatch) -> Iterator[None]:
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        monkeypatch.setenv(name.upper(), str(raw))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def open_app(app_env) -> Callable[..., AppTest]:
    def make(
        actor: Actor | None = None, page: str | None = None, query: dict[str, str] | None = None
    ) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=30)
        if actor is not None:
            at.session_state[state.USER_ID] = actor.id
            at.session_state[state.USERNAME] = actor.username
            at.session_state[state.ROLE] = actor.role
        if query:
            for k, v in query.items():
                at.query_params[k] = v
        at.run()
        if page:
            at.switch_page(page)
            at.run()
        return at

    return make
