"""Reuse the AppTest fixtures for the Metrics page tests."""

from tests.ui.conftest import app_env, open_app  # noqa: F401
