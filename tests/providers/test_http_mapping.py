"""One-attempt JSON calls: status and transport mapping, deadlines, Retry-After, redaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from core.providers.errors import (
    AmbiguousSubmitError,
    PermanentProviderError,
    RetryableProviderError,
)
from core.providers.http import JsonApi, make_http_client, parse_retry_after, redact


def api(client: httpx.Client, total: float = 5.0) -> JsonApi:
    return JsonApi(client, "Acme", "ACME_API_KEY", total)


def raising(exc: type[httpx.HTTPError]):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


class SlowStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"a": '
        for _ in range(20):
            time.sleep(0.02)
            yield b" "
        yield b"1}"


def test_client_sends_bearer_and_json_headers_and_never_follows_redirects():
    client = make_http_client("https://api.test/v1", SecretStr("k-1"), timeout=httpx.Timeout(3.0))
    assert client.headers["authorization"] == "Bearer k-1"
    assert client.headers["content-type"] == "application/json"
    assert client.follow_redirects is False
    assert "authorization" not in make_http_client("https://x", None, timeout=httpx.Timeout(1)).headers


def test_success_returns_decoded_json_and_sends_request_id(make_client, reply):
    seen: list[httpx.Request] = []
    client = make_client(reply(200, {"ok": True}, seen=seen))
    assert api(client).request("GET", "/ping", request_id="req-7") == {"ok": True}
    assert seen[0].headers["x-request-id"] == "req-7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        (None, None),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(value, expected):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def test_redact_removes_secrets_and_bearer_tokens():
    text = redact("key sk-abc-123 and Authorization: Bearer xyz.789", [SecretStr("sk-abc-123"), None])
    assert "sk-abc-123" not in text and "xyz.789" not in text


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 522])
def test_transient_statuses_are_retryable(make_client, reply, status):
    client = make_client(reply(status, {"error": {"message": "busy"}}, headers={"Retry-After": "12"}))
    with pytest.raises(RetryableProviderError) as info:
        api(client).request("GET", "/x")
    assert info.value.status == status and info.value.retry_after == 12.0
    assert not isinstance(info.value, AmbiguousSubmitError)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 422, 302])
def test_final_statuses_are_permanent(make_client, reply, status):
    client = make_client(reply(status, {"msg": "nope"}))
    with pytest.raises(PermanentProviderError) as info:
        api(client).request("GET", "/x")
    assert info.value.status == status and "Acme" in info.value.message


def test_402_with_retry_after_is_a_wait_not_an_alert(make_client, reply):
    client = make_client(
        reply(402, {"error": {"message": "negative balance"}}, headers={"Retry-After": "60"})
    )
    with pytest.raises(RetryableProviderError) as info:
        api(client).request("GET", "/x")
    assert info.value.retry_after == 60.0


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
def test_transport_failures_are_retryable(make_client, exc):
    with pytest.raises(RetryableProviderError) as info:
        api(make_client(raising(exc))).request("GET", "/x")
    assert not isinstance(info.value, AmbiguousSubmitError)
    assert "api.test" not in info.value.message  # httpx messages carry the URL; ours do not


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (httpx.ConnectError, False),
        (httpx.ConnectTimeout, False),
        (httpx.PoolTimeout, False),
        (httpx.ReadTimeout, True),
        (httpx.RemoteProtocolError, True),
        (httpx.WriteTimeout, True),
    ],
)
def test_paid_submit_separates_not_sent_from_maybe_accepted(make_client, exc, ambiguous):
    with pytest.raises(RetryableProviderError) as info:
        api(make_client(raising(exc))).request("POST", "/task", paid_submit=True)
    assert isinstance(info.value, AmbiguousSubmitError) is ambiguous


@pytest.mark.parametrize(("status", "ambiguous"), [(429, False), (408, False), (500, True), (503, True)])
def test_paid_submit_status_ambiguity(make_client, reply, status, ambiguous):
    with pytest.raises(RetryableProviderError) as info:
        api(make_client(reply(status, {}))).request("POST", "/task", paid_submit=True)
    assert isinstance(info.value, AmbiguousSubmitError) is ambiguous


def test_non_json_200_is_retryable_but_ambiguous_on_a_paid_submit(make_client, reply):
    client = make_client(reply(200, content=b"<html>Bad gateway</html>"))
    with pytest.raises(RetryableProviderError) as info:
        api(client).request("GET", "/x")
    assert not isinstance(info.value, AmbiguousSubmitError)
    with pytest.raises(AmbiguousSubmitError):
        api(client).request("POST", "/x", paid_submit=True)


def test_whole_request_deadline_cuts_a_trickling_reply(make_client):
    client = make_client(lambda _request: httpx.Response(200, stream=SlowStream()))
    started = time.monotonic()
    with pytest.raises(RetryableProviderError, match="within 0.1s"):
        api(client, total=0.1).request("GET", "/slow")
    assert time.monotonic() - started < 1.0


def test_per_request_timeouts_are_capped_by_the_total(make_client):
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    api(make_client(handler), total=2.0).request("GET", "/x")
    assert seen[0]["read"] == 2.0 and seen[0]["connect"] == 2.0


def test_provider_message_is_truncated_and_redacted(make_client, reply, api_key):
    long = f"bad field {api_key} " + "x" * 1000
    with pytest.raises(PermanentProviderError) as info:
        api(make_client(reply(400, {"error": {"message": long}}))).request("GET", "/x")
    assert api_key not in info.value.message
    assert len(info.value.message) < 400
