"""NanoBanana cover-art client over the kie.ai Market jobs API (contract section 3.1): submit and poll."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from core.providers.base import ImageStatus
from core.providers.errors import AmbiguousSubmitError, PermanentProviderError
from core.providers.http import Fault, JsonApi
from core.providers.suno import BODY_CODES

log = logging.getLogger(__name__)

PROMPT_MAX = 5000
# kie body codes (contract 2.5, kie column); recordInfo adds 422 "recordInfo is null" for unknown ids.
JOB_CODES: dict[int, Fault] = dict(BODY_CODES["kie"])
_RUNNING = frozenset({"waiting", "queuing", "generating"})
NO_IMAGE_MESSAGE = "NanoBanana finished the task but returned no image"


def result_urls(result_json: Any) -> tuple[str, ...]:
    """`resultJson` is a JSON *string* inside the JSON reply: decode it a second time."""
    value = result_json
    for _ in range(3):  # tolerate an already-decoded object and an accidental extra encoding
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    urls = value.get("resultUrls") if isinstance(value, Mapping) else None
    if not isinstance(urls, list):
        return ()
    return tuple(u.strip() for u in urls if isinstance(u, str) and u.strip())


class NanoBananaClient:
    name = "NanoBanana"

    def __init__(
        self,
        client: httpx.Client,
        *,
        model: str = "google/nano-banana",
        callback_url: str | None = None,
        image_size: str = "1:1",
        output_format: str = "png",
        total_timeout: float = 60.0,
        submit_timeout: float | None = None,
        poll_timeout: float | None = None,
        key_setting: str = "NANOBANANA_API_KEY",
    ) -> None:
        self.model = model
        self._callback_url = callback_url
        self._image_size = image_size
        self._output_format = output_format
        self._submit_timeout = submit_timeout or total_timeout  # whole-request wall-clock caps
        self._poll_timeout = poll_timeout or total_timeout
        self._api = JsonApi(client, self.name, key_setting, total_timeout)

    def submit(self, *, prompt: str, request_id: str | None = None) -> str:
        """Start one paid generation. Failures that may have been accepted raise AmbiguousSubmitError."""
        text = prompt.strip()[:PROMPT_MAX].rstrip()
        if not text:
            raise PermanentProviderError(self.name, "NanoBanana needs a prompt to draw a cover")
        body: dict[str, Any] = {
            "model": self.model,
            "input": {"prompt": text, "output_format": self._output_format, "image_size": self._image_size},
        }
        if self._callback_url:  # optional on Market jobs, unlike Suno
            body["callBackUrl"] = self._callback_url
        reply = self._api.request(
            "POST",
            "/api/v1/jobs/createTask",
            json_body=body,
            request_id=request_id,
            total_timeout=self._submit_timeout,
            paid_submit=True,
        )
        data = self._api.envelope(reply, JOB_CODES, paid_submit=True)
        task_id = data.get("taskId") if isinstance(data, Mapping) else None
        if not isinstance(task_id, str) or not task_id.strip():
            raise AmbiguousSubmitError(self.name, "NanoBanana accepted the request but returned no taskId")
        return task_id.strip()

    def poll(self, task_id: str, *, request_id: str | None = None) -> ImageStatus:
        reply = self._api.request(
            "GET",
            "/api/v1/jobs/recordInfo",
            params={"taskId": task_id},
            request_id=request_id,
            total_timeout=self._poll_timeout,
        )
        data = self._api.envelope(reply, JOB_CODES)
        if not isinstance(data, Mapping):
            log.warning("NanoBanana recordInfo for task %s has no data; treating it as running", task_id)
            return ImageStatus(state="running", raw_status="")
        raw = data.get("state")
        state = raw.strip().lower() if isinstance(raw, str) else ""
        if state in _RUNNING:
            return ImageStatus(state="running", raw_status=state)
        if state == "success":
            urls = result_urls(data.get("resultJson"))
            if not urls:
                return ImageStatus(state="failed", raw_status=state, error=NO_IMAGE_MESSAGE)
            return ImageStatus(state="succeeded", raw_status=state, urls=urls)
        if state == "fail":
            reason = self._api.detail(data.get("failMsg")) or "no reason given"
            code = data.get("failCode")
            suffix = f" (fail code {code})" if isinstance(code, int | str) and str(code).strip() else ""
            return ImageStatus(
                state="failed",
                raw_status=state,
                error=f"NanoBanana could not draw the cover: {reason}{suffix}",
            )
        log.warning("NanoBanana task %s has unknown state %r; treating it as running", task_id, state[:40])
        return ImageStatus(state="running", raw_status=state)
