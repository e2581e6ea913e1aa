"""Suno client against contract section 2: the request we target, body codes per flavor, status enum."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from core.providers.errors import (
    AmbiguousSubmitError,
    ContentRejectedError,
    PermanentProviderError,
    RetryableProviderError,
)
from core.providers.suno import NO_AUDIO_MESSAGE, SENSITIVE_MESSAGE, SunoClient

BASE = "https://suno.test"


def track(i: int, audio: str = "https://cdn.test/a.mp3", **extra) -> dict:
    return {
        "id": f"t{i}",
        "audioUrl": audio,
        "streamAudioUrl": "https://cdn.test/s",
        "imageUrl": "https://cdn.test/c.jpeg",
        "title": "Rain",
        "tags": "rock",
        "createTime": "2025-01-01 00:00:00",
        "duration": 198.44,
        **extra,
    }


def record(status: str, items: list | None = None, **extra) -> dict:
    data = {"taskId": "task-1", "status": status, "response": {"taskId": "task-1", "sunoData": items or []}}
    return {"code": 200, "msg": "success", "data": {**data, **extra}}


def suno(client: httpx.Client, flavor: str = "kie") -> SunoClient:
    return SunoClient(client, model="V4_5", flavor=flavor)


def submit(client: SunoClient) -> str:
    return client.submit(title="Rain", style="rock, male vocals", lyrics="[Verse]\nla la", request_id="r-1")


def test_submit_sends_exactly_the_targeted_contract_and_returns_task_id(make_client, reply):
    seen: list[httpx.Request] = []
    body = {"code": 200, "msg": "success", "data": {"taskId": "5c79be8e"}}
    assert submit(suno(make_client(reply(200, body, seen=seen), BASE))) == "5c79be8e"
    assert seen[0].method == "POST" and seen[0].url == f"{BASE}/api/v1/generate"
    assert json.loads(seen[0].content) == {
        "customMode": True,
        "instrumental": False,
        "prompt": "[Verse]\nla la",
        "style": "rock, male vocals",
        "title": "Rain",
        "model": "V4_5",
        "callBackUrl": "https://example.invalid/suno-callback",
    }


def test_submit_truncates_to_the_length_limits_without_splitting_lines(make_client, reply):
    seen: list[httpx.Request] = []
    client = suno(make_client(reply(200, {"code": 200, "data": {"taskId": "t"}}, seen=seen), BASE))
    lyrics = "\n".join(f"line number {i} of the song" for i in range(400))
    client.submit(title="word " * 40, style="tag, " * 100, lyrics=lyrics)
    sent = json.loads(seen[0].content)
    assert len(sent["prompt"]) <= 3000 and sent["prompt"].endswith("of the song")
    assert len(sent["style"]) <= 200 and not sent["style"].endswith(",")
    assert len(sent["title"]) <= 80 and sent["title"].endswith("word")


@pytest.mark.parametrize(
    ("flavor", "code", "error_class", "needle"),
    [
        ("kie", 429, RetryableProviderError, "rate limiting"),
        ("sunoapi", 429, PermanentProviderError, "no credits"),
        ("kie", 402, PermanentProviderError, "no credits"),
        ("sunoapi", 405, RetryableProviderError, "rate limiting"),
        ("sunoapi", 430, RetryableProviderError, "rate limiting"),
        ("kie", 405, PermanentProviderError, "unexpected"),
        ("kie", 455, RetryableProviderError, "maintenance"),
        ("sunoapi", 455, RetryableProviderError, "maintenance"),
        ("kie", 401, PermanentProviderError, "SUNO_API_KEY"),
        ("kie", 422, PermanentProviderError, "rejected the request"),
        ("kie", 413, PermanentProviderError, "rejected the request"),
        ("kie", 505, PermanentProviderError, "does not support"),
        ("kie", 999, PermanentProviderError, "unexpected"),
    ],
)
def test_body_codes_follow_the_per_flavor_table(make_client, reply, flavor, code, error_class, needle):
    client = suno(make_client(reply(200, {"code": code, "msg": "nope", "data": None}), BASE), flavor)
    with pytest.raises(error_class) as info:
        submit(client)
    assert needle in info.value.message and info.value.status == code
    assert info.value.retryable is (error_class is RetryableProviderError)
    assert not isinstance(info.value, AmbiguousSubmitError)


def test_rate_limited_submit_is_clearly_not_accepted_but_a_500_is_ambiguous(make_client, reply):
    with pytest.raises(AmbiguousSubmitError):
        submit(suno(make_client(reply(200, {"code": 500, "msg": "server error"}), BASE)))
    with pytest.raises(AmbiguousSubmitError):
        submit(suno(make_client(reply(502, content=b"Bad Gateway"), BASE)))


def test_submit_read_timeout_is_ambiguous_and_connect_error_is_not(make_client):
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AmbiguousSubmitError):
        submit(suno(make_client(timeout, BASE)))
    with pytest.raises(RetryableProviderError) as info:
        submit(suno(make_client(refused, BASE)))
    assert not isinstance(info.value, AmbiguousSubmitError)


def test_submit_400_naming_copyright_is_a_content_rejection(make_client, reply):
    body = {"code": 400, "msg": "The lyrics contain copyrighted material"}
    with pytest.raises(ContentRejectedError):
        submit(suno(make_client(reply(200, body), BASE)))


def test_poll_success_returns_tracks_with_audio_only(make_client, reply):
    seen: list[httpx.Request] = []
    items = [track(1), track(2, audio=""), track(3, createTime=1735689600), "junk"]
    status = suno(make_client(reply(200, record("SUCCESS", items), seen=seen), BASE)).poll("task-1")
    assert seen[0].url.path == "/api/v1/generate/record-info" and seen[0].url.params["taskId"] == "task-1"
    assert status.state == "succeeded" and status.raw_status == "SUCCESS"
    assert [t.id for t in status.tracks] == ["t1", "t3"]
    assert status.tracks[0].duration == 198.44 and status.tracks[0].image_url == "https://cdn.test/c.jpeg"


@pytest.mark.parametrize("status_value", ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"])
def test_poll_intermediate_statuses_are_running(make_client, reply, status_value):
    status = suno(make_client(reply(200, record(status_value, [track(1, audio="")])), BASE)).poll("task-1")
    assert status.state == "running" and status.raw_status == status_value


def test_success_without_any_audio_url_is_failed(make_client, reply):
    status = suno(make_client(reply(200, record("SUCCESS", [])), BASE)).poll("task-1")
    assert status.state == "failed" and status.error == NO_AUDIO_MESSAGE


def test_sensitive_word_error_is_failed_and_flagged(make_client, reply):
    status = suno(make_client(reply(200, record("SENSITIVE_WORD_ERROR")), BASE)).poll("task-1")
    assert status.state == "failed" and status.sensitive and status.error == SENSITIVE_MESSAGE


@pytest.mark.parametrize("status_value", ["CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED"])
def test_failed_statuses_carry_the_error_message(make_client, reply, status_value):
    body = record(status_value, errorCode=501, errorMessage="Audio generation failed")
    status = suno(make_client(reply(200, body), BASE)).poll("task-1")
    assert status.state == "failed" and not status.sensitive
    assert "Audio generation failed" in status.error and "501" in status.error


@pytest.mark.parametrize(("items", "state"), [([track(1)], "succeeded"), ([track(1, audio="")], "failed")])
def test_callback_exception_depends_on_audio(make_client, reply, items, state):
    status = suno(make_client(reply(200, record("CALLBACK_EXCEPTION", items)), BASE)).poll("task-1")
    assert status.state == state


def test_unknown_status_is_running_and_logged(make_client, reply, caplog):
    with caplog.at_level(logging.WARNING, logger="core.providers.suno"):
        status = suno(make_client(reply(200, record("GENERATING")), BASE)).poll("task-1")
    assert status.state == "running" and status.raw_status == "GENERATING"
    assert "unknown status" in caplog.text


def test_poll_of_unknown_task_is_permanent(make_client, reply):
    with pytest.raises(PermanentProviderError):
        suno(make_client(reply(200, {"code": 404, "msg": "task not found"}), BASE)).poll("nope")
