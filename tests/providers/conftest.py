"""Fixtures for provider contract tests: clients over httpx.MockTransport handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from core.providers.http import make_http_client

TEST_KEY = "sk-test-SECRET-123"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def api_key() -> str:
    return TEST_KEY


@pytest.fixture
def make_client() -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def build(handler: Handler, base_url: str = "https://api.test", key: str = TEST_KEY) -> httpx.Client:
        client = make_http_client(
            base_url,
            key,
            timeout=httpx.Timeout(5.0),
            transport=httpx.MockTransport(handler),
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def reply() -> Callable[..., Handler]:
    """reply(status, json=..., headers=..., content=...) -> a handler that records its requests."""

    def build(
        status: int = 200,
        json: object = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        seen: list[httpx.Request] | None = None,
    ) -> Handler:
        def handler(request: httpx.Request) -> httpx.Response:
            if seen is not None:
                seen.append(request)
            if content is not None:
                return httpx.Response(status, content=content, headers=headers)
            return httpx.Response(status, json=json, headers=headers)

        return handler

    return build
