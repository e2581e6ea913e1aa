"""The app's one Dependencies, cached per configuration fingerprint."""

from __future__ import annotations

import streamlit as st

from core.config import Settings, load_settings
from core.deps import Dependencies, build_dependencies
from core.logs import configure_logging


@st.cache_resource(show_spinner=False)
def _build(_settings: Settings, fingerprint: str) -> Dependencies:  # noqa: ARG001 - the cache key
    configure_logging("app", level=_settings.log_level, json=_settings.log_json, secrets=_settings.secrets)
    return build_dependencies(_settings)


def get_dependencies() -> Dependencies:
    settings = load_settings()
    return _build(settings, settings.fingerprint())
