"""No provider error (message, str, repr, traceback) ever shows the API key, even when a body echoes it."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import httpx

from core.providers.errors import ProviderError
from core.providers.nanobanana import NanoBananaClient
from core.providers.openrouter import OpenRouterClient
from core.providers.suno import SunoClient

KEY = "sk-test-SECRET-123"


def echoing(status: int, shape: str) -> Callable[[httpx.Request], httpx.Response]:
    """A hostile server that echoes the Authorization header back in its error message."""

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = f"bad key {request.headers.get('authorization')} / {KEY}"
        if shape == "openrouter":
            return httpx.Response(status, json={"error": {"code": status, "message": echoed}})
        return httpx.Response(status, json={"code": status, "msg": echoed, "data": None})

    return handler


def failing_handlers() -> list[Callable[[httpx.Request], httpx.Response]]:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out {request.url}", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=f"<html>{request.headers['authorization']}</html>".encode())

    handlers = [timeout, refused, html]
    for status in (200, 400, 401, 402, 403, 404, 422, 429, 455, 500, 503):
        handlers += [echoing(status, "openrouter"), echoing(status, "kie")]
    return handlers


def calls(client: httpx.Client) -> list[Callable[[], object]]:
    router = OpenRouterClient(client)
    suno = SunoClient(client)
    sunoapi = SunoClient(client, flavor="sunoapi")
    banana = NanoBananaClient(client)
    return [
        lambda: router.chat(model="m", messages=[{"role": "user", "content": "x"}]),
        router.list_models,
        lambda: suno.submit(title="t", style="s", lyrics="l"),
        lambda: sunoapi.submit(title="t", style="s", lyrics="l"),
        lambda: suno.poll("task"),
        lambda: banana.submit(prompt="p"),
        lambda: banana.poll("task"),
    ]


def test_no_error_text_contains_the_api_key(make_client):
    failures = 0
    for handler in failing_handlers():
        client = make_client(handler, key=KEY)
        for call in calls(client):
            try:
                call()
            except ProviderError as exc:
                failures += 1
                texts = [
                    exc.message,
                    str(exc),
                    repr(exc),
                    *map(str, exc.args),
                    "".join(traceback.format_exception(exc)),
                ]
                for text in texts:
                    assert KEY not in text, f"key leaked via {type(exc).__name__}: {text[:200]}"
                    assert "Bearer sk-" not in text
    assert failures > 100  # the scan really exercised the failure paths


def test_client_repr_does_not_expose_the_key(make_client):
    client = make_client(lambda _request: httpx.Response(200, json={}), key=KEY)
    assert KEY not in repr(client)
