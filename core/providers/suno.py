"""Suno music client for the kie.ai and sunoapi.org wrappers (contract section 2): submit and poll."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from core.providers.base import MusicStatus, Track
from core.providers.errors import AmbiguousSubmitError, PermanentProviderError
from core.providers.http import Fault, JsonApi

log = logging.getLogger(__name__)

Flavor = Literal["kie", "sunoapi"]
PLACEHOLDER_CALLBACK = "https://example.invalid/suno-callback"
LYRICS_MAX, STYLE_MAX, TITLE_MAX = 3000, 200, 80  # "contract we target": fits every model version

_COMMON: dict[int, Fault] = {
    400: Fault.REJECTED,
    401: Fault.AUTH,
    402: Fault.CREDITS,
    404: Fault.NOT_FOUND,
    409: Fault.CONFLICT,
    413: Fault.REJECTED,
    451: Fault.REJECTED,
    455: Fault.MAINTENANCE,
    500: Fault.SERVER,
}
# Body codes per wrapper (contract 2.5). 429 means opposite things: never branch on the raw number.
BODY_CODES: dict[str, dict[int, Fault]] = {
    "kie": {
        **_COMMON,
        422: Fault.REJECTED,
        429: Fault.RATE_LIMITED,
        501: Fault.GENERATION_FAILED,
        505: Fault.UNSUPPORTED,
    },
    "sunoapi": {**_COMMON, 405: Fault.RATE_LIMITED, 429: Fault.CREDITS, 430: Fault.RATE_LIMITED},
}
_RUNNING = frozenset({"PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"})
_FAILED = frozenset({"CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED"})
_CONTENT_HINTS = ("sensitive", "copyright", "violat", "inappropriate")
SENSITIVE_MESSAGE = "Suno rejected the lyrics as sensitive content — edit the concept and retry"
NO_AUDIO_MESSAGE = "Suno finished the task but returned no audio"


def clip_text(text: str, limit: int, separator: str) -> str:
    """Cut to `limit` chars at the last `separator` in the second half, so no line or tag is split."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    at = cut.rfind(separator)
    if at >= limit // 2:
        cut = cut[:at]
    return cut.rstrip(" ,\n")


def _tracks(data: Mapping[str, Any], task_id: str) -> tuple[Track, ...]:
    response = data.get("response")
    items = response.get("sunoData") if isinstance(response, Mapping) else None
    tracks: list[Track] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, Mapping):
            continue
        url = item.get("audioUrl")
        if not isinstance(url, str) or not url.strip():
            continue  # still rendering: only streamAudioUrl may be set
        duration = item.get("duration")
        image = item.get("imageUrl")
        tracks.append(
            Track(
                id=str(item.get("id") or f"{task_id}-{i}"),
                audio_url=url.strip(),
                title=item.get("title") if isinstance(item.get("title"), str) else "",
                tags=item.get("tags") if isinstance(item.get("tags"), str) else "",
                duration=float(duration)
                if isinstance(duration, int | float) and not isinstance(duration, bool)
                else None,
                image_url=image if isinstance(image, str) and image else None,
            )
        )
    return tuple(tracks)


class SunoClient:
    name = "Suno"

    def __init__(
        self,
        client: httpx.Client,
        *,
        model: str = "V4_5",
        flavor: Flavor = "kie",
        callback_url: str = PLACEHOLDER_CALLBACK,
        total_timeout: float = 60.0,
        submit_timeout: float | None = None,
        poll_timeout: float | None = None,
        negative_tags: str | None = None,
        key_setting: str = "SUNO_API_KEY",
    ) -> None:
        if flavor not in BODY_CODES:
            raise ValueError(f"unknown Suno flavor {flavor!r}")
        self.model = model
        self.flavor = flavor
        self._codes = BODY_CODES[flavor]
        self._callback_url = callback_url or PLACEHOLDER_CALLBACK  # kie answers 422 without one
        self._negative_tags = negative_tags
        self._submit_timeout = submit_timeout or total_timeout  # whole-request wall-clock caps
        self._poll_timeout = poll_timeout or total_timeout
        self._api = JsonApi(client, self.name, key_setting, total_timeout)

    def submit(self, *, title: str, style: str, lyrics: str, request_id: str | None = None) -> str:
        """Start one paid generation. Failures that may have been accepted raise AmbiguousSubmitError."""
        body: dict[str, Any] = {
            "customMode": True,
            "instrumental": False,
            "prompt": clip_text(lyrics, LYRICS_MAX, "\n"),
            "style": clip_text(style, STYLE_MAX, ","),
            "title": clip_text(title, TITLE_MAX, " "),
            "model": self.model,
            "callBackUrl": self._callback_url,
        }
        if not (body["prompt"] and body["style"] and body["title"]):
            raise PermanentProviderError(self.name, "Suno needs lyrics, a style and a title to make a song")
        if self._negative_tags:
            body["negativeTags"] = clip_text(self._negative_tags, STYLE_MAX, ",")
        reply = self._api.request(
            "POST",
            "/api/v1/generate",
            json_body=body,
            request_id=request_id,
            total_timeout=self._submit_timeout,
            paid_submit=True,
        )
        data = self._unwrap(reply, paid_submit=True)
        task_id = data.get("taskId") if isinstance(data, Mapping) else None
        if not isinstance(task_id, str) or not task_id.strip():
            raise AmbiguousSubmitError(self.name, "Suno accepted the request but returned no taskId")
        return task_id.strip()

    def poll(self, task_id: str, *, request_id: str | None = None) -> MusicStatus:
        reply = self._api.request(
            "GET",
            "/api/v1/generate/record-info",
            params={"taskId": task_id},
            request_id=request_id,
            total_timeout=self._poll_timeout,
        )
        data = self._unwrap(reply)
        if not isinstance(data, Mapping):
            log.warning("Suno record-info for task %s has no data; treating it as running", task_id)
            return MusicStatus(state="running", raw_status="")
        return self._status(data, task_id)

    def _unwrap(self, reply: Any, *, paid_submit: bool = False) -> Any:
        if isinstance(reply, Mapping) and reply.get("code") in (400, "400"):
            msg = reply.get("msg")
            if isinstance(msg, str) and any(h in msg.lower() for h in _CONTENT_HINTS):
                return self._api.envelope(reply, {400: Fault.CONTENT}, paid_submit=paid_submit)
        return self._api.envelope(reply, self._codes, paid_submit=paid_submit)

    def _status(self, data: Mapping[str, Any], task_id: str) -> MusicStatus:
        raw = data.get("status")
        status = raw.strip().upper() if isinstance(raw, str) else ""
        tracks = _tracks(data, task_id)
        if status in _RUNNING:
            return MusicStatus(state="running", raw_status=status, tracks=tracks)
        if status == "SUCCESS" or (status == "CALLBACK_EXCEPTION" and tracks):
            if not tracks:
                return MusicStatus(state="failed", raw_status=status, error=NO_AUDIO_MESSAGE)
            return MusicStatus(state="succeeded", raw_status=status, tracks=tracks)
        if status == "CALLBACK_EXCEPTION":
            return MusicStatus(state="failed", raw_status=status, error=NO_AUDIO_MESSAGE)
        if status == "SENSITIVE_WORD_ERROR":
            return MusicStatus(state="failed", raw_status=status, error=SENSITIVE_MESSAGE, sensitive=True)
        if status in _FAILED:
            return self._failure(data, status)
        log.warning("Suno task %s has unknown status %r; treating it as running", task_id, status[:40])
        return MusicStatus(state="running", raw_status=status, tracks=tracks)

    def _failure(self, data: Mapping[str, Any], status: str) -> MusicStatus:
        code = data.get("errorCode")
        reason = self._api.detail(data.get("errorMessage")) or status
        suffix = f" (error code {code})" if isinstance(code, int | str) and str(code).strip() else ""
        # kie errorCode 400 = lyrics contain copyrighted material: resubmitting the same text fails again.
        sensitive = str(code).strip() == "400"
        return MusicStatus(
            state="failed",
            raw_status=status,
            error=f"Suno could not generate the song: {reason}{suffix}",
            sensitive=sensitive,
        )
