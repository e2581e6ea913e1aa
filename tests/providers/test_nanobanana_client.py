"""NanoBanana (kie Market jobs) client against contract section 3.1."""

from __future__ import annotations

import json

import httpx
import pytest

from core.providers.errors import AmbiguousSubmitError, PermanentProviderError, RetryableProviderError
from core.providers.nanobanana import NO_IMAGE_MESSAGE, NanoBananaClient

BASE = "https://kie.test"


def job(state: str, **extra) -> dict:
    data = {
        "taskId": "task_google_1",
        "model": "google/nano-banana",
        "state": state,
        "failCode": "",
        "failMsg": "",
    }
    return {"code": 200, "msg": "success", "data": {**data, **extra}}


def test_submit_posts_the_market_job_and_omits_an_unset_callback(make_client, reply):
    seen: list[httpx.Request] = []
    client = NanoBananaClient(
        make_client(reply(200, {"code": 200, "data": {"taskId": "task_1"}}, seen=seen), BASE)
    )
    assert client.submit(prompt="x" * 6000, request_id="r") == "task_1"
    assert seen[0].url == f"{BASE}/api/v1/jobs/createTask"
    body = json.loads(seen[0].content)
    assert body["model"] == "google/nano-banana" and "callBackUrl" not in body
    assert body["input"]["output_format"] == "png" and body["input"]["image_size"] == "1:1"
    assert len(body["input"]["prompt"]) == 5000


def test_submit_includes_a_configured_callback(make_client, reply):
    seen: list[httpx.Request] = []
    ok = reply(200, {"code": 200, "data": {"taskId": "t"}}, seen=seen)
    NanoBananaClient(make_client(ok, BASE), callback_url="https://us.test/cb").submit(prompt="cover")
    assert json.loads(seen[0].content)["callBackUrl"] == "https://us.test/cb"


def test_submit_without_task_id_is_ambiguous(make_client, reply):
    with pytest.raises(AmbiguousSubmitError):
        NanoBananaClient(make_client(reply(200, {"code": 200, "data": {}}), BASE)).submit(prompt="cover")


def test_success_double_decodes_result_json(make_client, reply):
    result = json.dumps({"resultUrls": ["https://cdn.test/a.png", "https://cdn.test/b.png"]})
    seen: list[httpx.Request] = []
    client = NanoBananaClient(make_client(reply(200, job("success", resultJson=result), seen=seen), BASE))
    status = client.poll("task_google_1")
    assert seen[0].url.path == "/api/v1/jobs/recordInfo" and seen[0].url.params["taskId"] == "task_google_1"
    assert status.state == "succeeded" and status.urls == ("https://cdn.test/a.png", "https://cdn.test/b.png")


@pytest.mark.parametrize("result", [json.dumps({"resultUrls": []}), "not json", None, json.dumps({"x": 1})])
def test_success_without_urls_is_failed(make_client, reply, result):
    status = NanoBananaClient(make_client(reply(200, job("success", resultJson=result)), BASE)).poll("t")
    assert status.state == "failed" and status.error == NO_IMAGE_MESSAGE


@pytest.mark.parametrize("state", ["waiting", "queuing", "generating", "rendering-v2"])
def test_non_terminal_and_unknown_states_are_running(make_client, reply, state):
    status = NanoBananaClient(make_client(reply(200, job(state)), BASE)).poll("t")
    assert status.state == "running" and status.raw_status == state


def test_fail_state_carries_fail_message_and_code(make_client, reply):
    body = job("fail", failCode="500", failMsg="Internal generation error")
    status = NanoBananaClient(make_client(reply(200, body), BASE)).poll("t")
    assert status.state == "failed" and "Internal generation error" in status.error and "500" in status.error


@pytest.mark.parametrize(
    "body", [{"code": 422, "msg": "recordInfo is null"}, {"code": 404, "msg": "Task not found"}]
)
def test_unknown_task_is_permanent(make_client, reply, body):
    with pytest.raises(PermanentProviderError):
        NanoBananaClient(make_client(reply(200, body), BASE)).poll("gone")


def test_kie_rate_limit_code_is_retryable(make_client, reply):
    with pytest.raises(RetryableProviderError) as info:
        NanoBananaClient(make_client(reply(200, {"code": 429, "msg": "too many"}), BASE)).submit(prompt="c")
    assert not isinstance(info.value, AmbiguousSubmitError)
