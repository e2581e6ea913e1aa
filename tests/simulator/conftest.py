"""Fixtures: an in-process simulator on a free port and an httpx client that talks to it over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from simulator.server import RunningSimulator, start_server
from simulator.state import Latency, SimState


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_server(port=0, state=SimState(Latency(llm=0.0, music=0.3, image=0.3)))
    yield running
    running.stop()


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer test-key", "X-Request-ID": "req-test"}
    with httpx.Client(base_url=sim.url, headers=headers, timeout=10) as c:
        yield c


@pytest.fixture
def add_fault(client: httpx.Client) -> Callable[..., dict[str, Any]]:
    def add(**fault: Any) -> dict[str, Any]:
        response = client.post("/_sim/faults", json={"faults": [fault]})
        assert response.status_code == 200, response.text
        return response.json()["added"][0]

    return add
