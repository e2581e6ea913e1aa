"""The AppTest fixtures of tests/ui for the batch page tests."""

from tests.ui.conftest import app_env, open_app  # noqa: F401
