"""OpenRouter client against contract section 1: chat parsing, error table, JSON extraction, models."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from core.providers.errors import (
    ContentRejectedError,
    InvalidOutputError,
    PermanentProviderError,
    RetryableProviderError,
)
from core.providers.openrouter import OpenRouterClient, extract_json

BASE = "https://openrouter.test/api/v1"
COMPLETION = {
    "id": "gen-123",
    "object": "chat.completion",
    "model": "openai/gpt-4o-mini-2024",
    "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": '{"a": 1}'}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "cost": 0.00014},
}


def chat(client: httpx.Client, **kwargs) -> object:
    router = OpenRouterClient(client, app_url="https://songsmith.test", app_title="Songsmith")
    return router.chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], **kwargs)


def test_chat_posts_the_contract_body_and_parses_the_result(make_client, reply):
    seen: list[httpx.Request] = []
    result = chat(
        make_client(reply(200, COMPLETION, seen=seen), BASE),
        response_format={"type": "json_object"},
        temperature=0.7,
        max_tokens=300,
        request_id="job-1-step-2",
    )
    request = seen[0]
    assert request.url == f"{BASE}/chat/completions"
    assert request.headers["http-referer"] == "https://songsmith.test"
    assert request.headers["x-openrouter-title"] == "Songsmith"
    assert request.headers["x-request-id"] == "job-1-step-2"
    assert json.loads(request.content) == {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
        "temperature": 0.7,
        "max_tokens": 300,
    }
    assert result.content == '{"a": 1}'
    assert result.model == "openai/gpt-4o-mini-2024"
    assert result.generation_id == "gen-123" and result.finish_reason == "stop"
    assert result.usage["total_tokens"] == 14


@pytest.mark.parametrize(
    ("status", "error_class", "needle"),
    [
        (400, PermanentProviderError, "rejected the request"),
        (401, PermanentProviderError, "OPENROUTER_API_KEY"),
        (402, PermanentProviderError, "no credits"),
        (403, PermanentProviderError, "denied access"),
        (404, PermanentProviderError, "not found"),
        (408, RetryableProviderError, "timed out"),
        (429, RetryableProviderError, "rate limiting"),
        (500, RetryableProviderError, "server error"),
        (502, RetryableProviderError, "server error"),
        (503, RetryableProviderError, "server error"),
        (504, RetryableProviderError, "server error"),
    ],
)
def test_every_status_in_the_error_table(make_client, reply, status, error_class, needle):
    body = {"error": {"code": status, "message": "upstream said no"}}
    with pytest.raises(error_class) as info:
        chat(make_client(reply(status, body), BASE))
    assert needle in info.value.message and f"HTTP {status}" in info.value.message
    assert info.value.provider == "OpenRouter" and info.value.status == status
    assert info.value.retryable is (error_class is RetryableProviderError)


def test_429_retry_after_header_is_parsed(make_client, reply):
    client = make_client(
        reply(429, {"error": {"code": 429, "message": "slow down"}}, headers={"Retry-After": "3"})
    )
    with pytest.raises(RetryableProviderError) as info:
        chat(client)
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "metadata"),
    [
        (400, {"error_type": "content_policy_violation"}),
        (400, {"error_type": "refusal"}),
        (403, {"reasons": ["violence"], "flagged_input": "...", "provider_name": "OpenAI"}),
    ],
)
def test_moderation_and_refusals_are_content_rejections(make_client, reply, status, metadata):
    body = {"error": {"code": status, "message": "flagged", "metadata": metadata}}
    with pytest.raises(ContentRejectedError, match="edit the concept"):
        chat(make_client(reply(status, body), BASE))


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": 502, "message": "provider died mid-stream"}},
        {**COMPLETION, "choices": [{"finish_reason": "error", "message": {"content": ""}}]},
        {
            **COMPLETION,
            "choices": [{"error": {"code": 500, "message": "x"}, "message": {"content": "partial"}}],
        },
        {**COMPLETION, "choices": [{"finish_reason": "stop", "message": {"content": None}}]},
        {**COMPLETION, "choices": [{"finish_reason": "stop", "message": {"content": "   "}}]},
        {**COMPLETION, "choices": []},
    ],
)
def test_200_with_error_or_empty_completion_is_retryable(make_client, reply, body):
    with pytest.raises(RetryableProviderError):
        chat(make_client(reply(200, body), BASE))


@pytest.mark.parametrize("code", [400, 401, 402, 403, 404])
def test_200_with_a_final_error_code_is_permanent(make_client, reply, code):
    body = {"error": {"code": code, "message": "no"}}
    with pytest.raises(PermanentProviderError):
        chat(make_client(reply(200, body), BASE))


def test_content_filter_finish_reason_is_a_content_rejection(make_client, reply):
    body = {**COMPLETION, "choices": [{"finish_reason": "content_filter", "message": {"content": ""}}]}
    with pytest.raises(ContentRejectedError):
        chat(make_client(reply(200, body), BASE))


def test_read_timeout_is_retryable(make_client):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RetryableProviderError, match="did not answer in time"):
        chat(make_client(handler, BASE))


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "Rain", "n": [1, 2]}',
        '```json\n{"title": "Rain", "n": [1, 2]}\n```',
        '```\n{"title": "Rain", "n": [1, 2]}\n```',
        'Sure! Here it is:\n{"title": "Rain", "n": [1, 2]}\nHope that helps.',
        'Here:\n```json\n{"title": "Rain", "n": [1, 2]}\n```\nAnything else?',
        'Result {"title": "Rain", "n": [1, 2]} (note: use {braces} carefully)',
    ],
)
def test_extract_json_strips_fences_and_prose(text):
    assert extract_json(text) == {"title": "Rain", "n": [1, 2]}


@pytest.mark.parametrize("text", ["", "no json here", "```json\n{broken\n```", "{'single': 'quotes'}"])
def test_extract_json_without_an_object_is_invalid_output(text):
    with pytest.raises(InvalidOutputError):
        extract_json(text)


def test_list_models_parses_string_pricing_and_skips_malformed_entries(make_client, reply):
    body = {
        "data": [
            {
                "id": "openai/gpt-4o-mini",
                "name": "GPT-4o mini",
                "context_length": 128000,
                "description": "small",
                "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
            },
            {"id": "meta/free:free", "pricing": {"prompt": "0", "completion": "abc"}},
            {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": None}},
            {"name": "no id"},
            "garbage",
        ]
    }
    seen: list[httpx.Request] = []
    models = OpenRouterClient(make_client(reply(200, body, seen=seen), BASE)).list_models()
    assert seen[0].url == f"{BASE}/models"
    assert [m.id for m in models] == ["openai/gpt-4o-mini", "meta/free:free", "openrouter/auto"]
    assert models[0].prompt_price == Decimal("0.00000015") and models[0].context_length == 128000
    assert models[1].prompt_price == Decimal("0") and models[1].completion_price is None
    assert models[1].name == "meta/free:free"
    assert models[2].prompt_price is None
