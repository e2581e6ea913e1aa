"""The accounts tests drive the Settings page too: reuse the AppTest fixtures."""

from tests.ui.conftest import app_env, open_app  # noqa: F401
