"""Chaos fixtures: a provider that can really go down, fast worker settings, and the figures table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Settings
from tests.chaos.helpers import CHAOS_SETTINGS, LATENCY, RestartableSimulator, Tally
from tests.conftest import make_settings

_TALLIES: list[Tally] = []
HEADER = "scenario | jobs | completed | failed-with-reason | stuck | duplicated paid calls | lost artifacts"


@pytest.fixture(scope="session")
def chaos_simulator() -> Iterator[RestartableSimulator]:
    sim = RestartableSimulator()
    yield sim
    sim.close()


@pytest.fixture
def sim(chaos_simulator: RestartableSimulator) -> Iterator[RestartableSimulator]:
    """Overrides the shared `sim`: the chaos runs use a simulator they can stop and start."""
    chaos_simulator.up()
    chaos_simulator.control("/_sim/reset")
    chaos_simulator.control("/_sim/config", {"latency": LATENCY})
    yield chaos_simulator
    chaos_simulator.up()
    chaos_simulator.control("/_sim/reset")


@pytest.fixture
def settings(pg_url: str, redis_url: str, sim: RestartableSimulator, tmp_path: Path) -> Settings:
    # ARTIFACT_DIR sits one level below a directory of its own, so the disk fault can replace that
    # directory with a regular file (see helpers.disk_refuses_writes).
    return make_settings(pg_url, redis_url, sim.url, tmp_path / "disk" / "artifacts", **CHAOS_SETTINGS)


@pytest.fixture(scope="session")
def chaos_report() -> list[Tally]:
    """Each scenario adds its Tally here before asserting, so a failing one still prints its line."""
    return _TALLIES


def pytest_terminal_summary(terminalreporter) -> None:
    if not _TALLIES:
        return
    terminalreporter.write_sep("=", "chaos figures")
    terminalreporter.write_line(HEADER)
    for tally in _TALLIES:
        terminalreporter.write_line(tally.line())
    if terminalreporter.config.option.verbose > 0:
        for tally in _TALLIES:
            terminalreporter.write_line(f"{tally.scenario}: {tally.notes}")
