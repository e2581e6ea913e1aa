"""Lifecycle tests: the simulator's remote tasks finish quickly unless a test slows them down."""

from __future__ import annotations

import pytest

from tests.conftest import sim_control
from tests.ui.conftest import app_env, open_app  # noqa: F401 - the AppTest fixtures, shared


@pytest.fixture(autouse=True)
def quick_tasks(sim) -> None:
    sim_control(sim, "/_sim/config", {"latency": {"llm": 0, "music": 0.05, "image": 0.05}})
