"""Provider HTTP plumbing: client factory, one-attempt JSON calls, the single error mapping, redaction."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

import httpx
from pydantic import SecretStr

from core import metrics
from core.providers.errors import (
    AmbiguousSubmitError,
    ContentRejectedError,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)

DETAIL_MAX = 300
MAX_BODY_BYTES = 32 * 1024 * 1024  # OpenRouter image replies carry base64 data URLs
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_CONTENT_ERROR_TYPES = frozenset({"content_policy_violation", "refusal", "moderation"})


def make_http_client(
    base_url: str,
    api_key: SecretStr | str | None,
    *,
    timeout: httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    merged = {"Content-Type": "application/json", "Accept": "application/json"}
    secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if secret:
        merged["Authorization"] = f"Bearer {secret}"
    merged.update(headers or {})
    return httpx.Client(
        base_url=base_url, headers=merged, timeout=timeout, transport=transport, follow_redirects=False
    )


def redact(text: str, secrets: Iterable[SecretStr | str | None] = ()) -> str:
    """Replace every known secret and any `Bearer <token>` in `text`."""
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value and len(value) >= 4:
            text = text.replace(value, "[REDACTED]")
    return _BEARER.sub("Bearer [REDACTED]", text)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


class Fault(Enum):
    """What went wrong, independent of which number a provider uses for it."""

    AUTH = "auth"
    FORBIDDEN = "forbidden"
    CREDITS = "credits"
    REJECTED = "rejected"
    CONTENT = "content"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    MAINTENANCE = "maintenance"
    SERVER = "server"
    GENERATION_FAILED = "generation_failed"


_RETRYABLE = {Fault.TIMEOUT, Fault.RATE_LIMITED, Fault.MAINTENANCE, Fault.SERVER, Fault.GENERATION_FAILED}
# Faults that prove a paid submit was NOT accepted; other retryable faults on a submit are ambiguous.
_NOT_ACCEPTED = {Fault.TIMEOUT, Fault.RATE_LIMITED, Fault.MAINTENANCE}
MAINTENANCE_RETRY_AFTER = 300.0


def fault_for_status(status: int, *, retry_after: float | None = None) -> Fault:
    if status == 401:
        return Fault.AUTH
    if status == 403:
        return Fault.FORBIDDEN
    if status == 402:  # only a 402 carrying Retry-After is a wait-and-retry case (contract 1.4)
        return Fault.RATE_LIMITED if retry_after is not None else Fault.CREDITS
    if status in (404, 410):
        return Fault.NOT_FOUND
    if status == 408:
        return Fault.TIMEOUT
    if status == 409:
        return Fault.CONFLICT
    if status == 429:
        return Fault.RATE_LIMITED
    if status in (501, 505):
        return Fault.UNSUPPORTED
    if status >= 500:  # 500/502/503/504 and gateway codes such as Cloudflare's 520-524
        return Fault.SERVER
    if 300 <= status < 400:
        return Fault.UNKNOWN
    return Fault.REJECTED


def error_for(
    fault: Fault,
    *,
    provider: str,
    code: int | None,
    key_setting: str,
    detail: str = "",
    label: str = "HTTP",
    retry_after: float | None = None,
    paid_submit: bool = False,
) -> ProviderError:
    """Build the one exception for `fault`; `detail` must already be redacted and truncated."""
    where = f"{label} {code}" if code is not None else label
    suffix = f": {detail}" if detail else ""
    messages = {
        Fault.AUTH: f"{provider} rejected the API key ({where}) — check {key_setting}",
        Fault.FORBIDDEN: f"{provider} denied access ({where}){suffix} — check {key_setting}",
        Fault.CREDITS: f"{provider} has no credits left ({where}) — top up the account",
        Fault.REJECTED: f"{provider} rejected the request ({where}){suffix}",
        Fault.CONTENT: f"{provider} refused the content ({where}){suffix} — edit the concept and retry",
        Fault.NOT_FOUND: f"{provider} returned not found ({where}){suffix}",
        Fault.CONFLICT: f"{provider} reported a conflict ({where}){suffix}",
        Fault.UNSUPPORTED: f"{provider} does not support this request ({where}){suffix}",
        Fault.UNKNOWN: f"{provider} answered with an unexpected {where}{suffix}",
        Fault.TIMEOUT: f"{provider} timed out ({where})",
        Fault.RATE_LIMITED: f"{provider} is rate limiting requests ({where})",
        Fault.MAINTENANCE: f"{provider} is under maintenance ({where})",
        Fault.SERVER: f"{provider} had a server error ({where})",
        Fault.GENERATION_FAILED: f"{provider} failed to generate ({where}){suffix}",
    }
    message = messages[fault]
    if fault is Fault.MAINTENANCE and retry_after is None:
        retry_after = MAINTENANCE_RETRY_AFTER
    kwargs: dict[str, Any] = {"status": code, "retry_after": retry_after}
    if fault in _RETRYABLE:
        if paid_submit and fault not in _NOT_ACCEPTED:
            return AmbiguousSubmitError(provider, message + " — the task may have been accepted", **kwargs)
        return RetryableProviderError(provider, message, **kwargs)
    if fault is Fault.CONTENT:
        return ContentRejectedError(provider, message, **kwargs)
    return PermanentProviderError(provider, message, **kwargs)


def clip(text: Any, secrets: Iterable[SecretStr | str | None] = ()) -> str:
    """A provider-supplied message made safe to show: redacted, one line, at most DETAIL_MAX chars."""
    if not isinstance(text, str):
        return ""
    text = " ".join(redact(text, secrets).split())
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def body_detail(body: Any) -> Any:
    """The human message of an error body: OpenRouter `error.message` or the wrappers' `msg`."""
    if not isinstance(body, Mapping):
        return None
    err = body.get("error")
    if isinstance(err, Mapping):
        return err.get("message")
    if isinstance(err, str):
        return err
    return body.get("msg") or body.get("message")


def refine_content_fault(fault: Fault, body: Any) -> Fault:
    """OpenRouter flags refusals/moderation in `error.metadata` (400 `error_type`, 403 `reasons`)."""
    err = body.get("error") if isinstance(body, Mapping) else None
    meta = err.get("metadata") if isinstance(err, Mapping) else None
    if fault is Fault.FORBIDDEN and _mentions_moderation(err):
        return Fault.CONTENT
    if not isinstance(meta, Mapping):
        return fault
    if meta.get("error_type") in _CONTENT_ERROR_TYPES:
        return Fault.CONTENT
    if fault is Fault.FORBIDDEN and ("reasons" in meta or "flagged_input" in meta):
        return Fault.CONTENT
    return fault


def _mentions_moderation(err: Any) -> bool:
    message = err.get("message") if isinstance(err, Mapping) else None
    return isinstance(message, str) and any(w in message.lower() for w in ("moderat", "flagged"))


def _capped(timeout: httpx.Timeout, total: float) -> httpx.Timeout:
    def cap(value: float | None) -> float:
        return total if value is None else min(value, total)

    return httpx.Timeout(
        connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write), pool=cap(timeout.pool)
    )


@dataclass(frozen=True)
class JsonApi:
    """One provider's JSON API over an injected client: exactly one attempt per call, no retries."""

    client: httpx.Client
    provider: str
    key_setting: str
    total_timeout: float = 120.0
    max_body_bytes: int = MAX_BODY_BYTES

    def secrets(self) -> tuple[str, ...]:
        auth = self.client.headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else auth
        return (token,) if token else ()

    def detail(self, text: Any) -> str:
        return clip(text, self.secrets())

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        total_timeout: float | None = None,
        paid_submit: bool = False,
    ) -> Any:
        """Send once and return the decoded JSON of a 2xx reply, or raise the mapped ProviderError.

        A paid submit separates "clearly not accepted" (connect/pool failures, 408/429/rate codes:
        plain Retryable) from "maybe accepted" (failure after the request was sent, 5xx, an unreadable
        200: AmbiguousSubmitError), per contract 2.8. An unreadable 200 elsewhere is Retryable: a
        flaky gateway's HTML page is transient, and the callers validate decoded payloads themselves.
        """
        total = total_timeout or self.total_timeout
        hdrs = dict(headers or {})
        if request_id:
            hdrs["X-Request-ID"] = request_id
        request = self.client.build_request(
            method,
            path,
            json=json_body,
            params=params,
            headers=hdrs,
            timeout=_capped(self.client.timeout, total),
        )
        started = time.monotonic()
        status = "error"
        try:
            response = self.client.send(request, stream=True)
            status = str(response.status_code)
            try:
                raw = self._read(response, started, total, paid_submit)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            status = type(exc).__name__
            raise self._transport_error(exc, paid_submit) from exc
        finally:
            metrics.provider_call(self.provider, path, status, time.monotonic() - started)
        return self._decode(response, raw, paid_submit)

    def _read(self, response: httpx.Response, started: float, total: float, paid_submit: bool) -> bytes:
        limit = self.max_body_bytes if response.is_success else 64 * 1024
        chunks: list[bytes] = []
        size = 0
        if time.monotonic() - started > total:
            raise self._deadline(total, paid_submit)
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                if not response.is_success:
                    break  # an error page only needs its first bytes
                raise self._unreadable(response.status_code, "reply is too large", paid_submit)
            chunks.append(chunk)
            if time.monotonic() - started > total:
                raise self._deadline(total, paid_submit)
        return b"".join(chunks)

    def _decode(self, response: httpx.Response, raw: bytes, paid_submit: bool) -> Any:
        status = response.status_code
        try:
            body: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
            if response.is_success:
                raise self._unreadable(status, "reply is not JSON", paid_submit) from None
        if response.is_success:
            if body is None:
                raise self._unreadable(status, "reply is empty", paid_submit)
            return body
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        fault = refine_content_fault(fault_for_status(status, retry_after=retry_after), body)
        detail = self.detail(body_detail(body))
        if fault is Fault.UNKNOWN:
            detail = "unexpected redirect — check the base URL"
        raise error_for(
            fault,
            provider=self.provider,
            code=status,
            key_setting=self.key_setting,
            detail=detail,
            retry_after=retry_after,
            paid_submit=paid_submit,
        )

    def _deadline(self, total: float, paid_submit: bool) -> ProviderError:
        message = f"{self.provider} did not finish replying within {total:g}s"
        if paid_submit:
            return AmbiguousSubmitError(self.provider, message + " — the task may have been accepted")
        return RetryableProviderError(self.provider, message)

    def _unreadable(self, status: int, why: str, paid_submit: bool) -> ProviderError:
        message = f"{self.provider} sent an unreadable reply (HTTP {status}: {why})"
        if paid_submit:
            return AmbiguousSubmitError(
                self.provider, message + " — the task may have been accepted", status=status
            )
        return RetryableProviderError(self.provider, message, status=status)

    def _transport_error(self, exc: httpx.HTTPError, paid_submit: bool) -> ProviderError:
        kind = type(exc).__name__  # never str(exc): httpx messages carry the URL
        if isinstance(exc, httpx.UnsupportedProtocol):
            return PermanentProviderError(self.provider, f"{self.provider} base URL is not http(s) ({kind})")
        not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if isinstance(exc, httpx.TimeoutException):
            message = f"{self.provider} did not answer in time ({kind})"
        else:
            message = f"{self.provider} could not be reached ({kind})"
        if paid_submit and not not_sent:
            return AmbiguousSubmitError(self.provider, message + " — the task may have been accepted")
        return RetryableProviderError(self.provider, message)

    def envelope(
        self, body: Any, codes: Mapping[int, Fault], *, paid_submit: bool = False, label: str = "code"
    ) -> Any:
        """Unwrap the kie/sunoapi `{code, msg, data}` envelope; HTTP 200 can still carry a failure code.

        A code missing from `codes` is an error that must not be retried (contract section 0).
        """
        if not isinstance(body, Mapping):
            raise self._unreadable(200, "reply is not an object", paid_submit)
        code = body.get("code")
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        if code == 200:
            return body.get("data")
        fault = codes.get(code, Fault.UNKNOWN) if isinstance(code, int) else Fault.UNKNOWN
        raise error_for(
            fault,
            provider=self.provider,
            code=code if isinstance(code, int) else None,
            key_setting=self.key_setting,
            detail=self.detail(body.get("msg")),
            label=label,
            paid_submit=paid_submit,
        )
