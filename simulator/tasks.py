"""Music and image task records: the time-driven lifecycle and the kie.ai-shaped poll payloads."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.audio import plan_duration

# Fractions of the configured latency at which each non-terminal stage begins; done at 1.0.
MUSIC_STAGES = (("PENDING", 0.0), ("TEXT_SUCCESS", 0.25), ("FIRST_SUCCESS", 0.6))
IMAGE_STAGES = (("waiting", 0.0), ("queuing", 0.15), ("generating", 0.35))

SUNO_MODEL_NAMES = {
    "V3_5": "chirp-v3-5",
    "V4": "chirp-v4",
    "V4_5": "chirp-auk",
    "V4_5PLUS": "chirp-bluejay",
    "V4_5ALL": "chirp-auk-turbo",
    "V5": "chirp-crow",
}


def _stage(stages: tuple[tuple[str, float], ...], fraction: float) -> str:
    current = stages[0][0]
    for name, start in stages:
        if fraction >= start:
            current = name
    return current


@dataclass
class _Task:
    task_id: str
    created: float  # SimState clock (monotonic, shiftable by /_sim/advance)
    created_wall: float  # epoch seconds
    latency: float
    request: dict[str, Any]
    outcome: str | None = None  # a task_* fault kind, or None for the happy path
    fault: dict[str, Any] = field(default_factory=dict)
    unknown_polls: int = 0
    polls: int = 0

    def fraction(self, now: float) -> float:
        if self.latency <= 0:
            return 1.0
        return max(0.0, (now - self.created) / self.latency)

    def done(self, now: float) -> bool:
        return self.fraction(now) >= 1.0 and self.outcome != "task_never_finishes"

    def attach(self, kind: str, params: dict[str, Any]) -> None:
        """Fix this task's outcome from a task_* fault (see simulator.faults for the rule)."""
        self.fault = dict(params)
        if kind == "task_unknown_status":
            self.unknown_polls = int(params.get("polls", 2))
        else:
            self.outcome = kind

    def take_unknown(self) -> str | None:
        """Consume one of the polls that must report an unknown status."""
        self.polls += 1
        if self.unknown_polls > 0:
            self.unknown_polls -= 1
            return str(self.fault.get("value") or self.default_unknown)
        return None

    default_unknown = "GENERATING"


@dataclass
class MusicTask(_Task):
    title: str = ""
    style: str = ""
    lyrics: str = ""
    model: str = ""

    def status(self, now: float) -> str:
        if self.outcome == "task_never_finishes":
            return "PENDING"
        if not self.done(now):
            return _stage(MUSIC_STAGES, self.fraction(now))
        if self.outcome == "task_fail":
            return str(self.fault.get("value") or "GENERATE_AUDIO_FAILED")
        if self.outcome == "task_sensitive":
            return "SENSITIVE_WORD_ERROR"
        return "SUCCESS"

    def track(self, n: int, base_url: str, *, complete: bool) -> dict[str, Any]:
        audio = f"{base_url}/files/audio/{self.task_id}-{n}.wav"
        return {
            "id": f"{self.task_id[:24]}{n:08x}",
            "audioUrl": audio if complete else "",
            "sourceAudioUrl": audio if complete else "",
            "streamAudioUrl": audio,
            "sourceStreamAudioUrl": audio,
            "imageUrl": f"{base_url}/files/image/{self.task_id}-{n}.jpg",
            "sourceImageUrl": f"{base_url}/files/image/{self.task_id}-{n}.jpg",
            "prompt": self.lyrics,
            "modelName": SUNO_MODEL_NAMES.get(self.model, f"chirp-{self.model.lower().replace('_', '-')}"),
            "title": self.title,
            "tags": self.style,
            "createTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.created_wall)),
            "duration": plan_duration(self.style),
        }

    def record(self, now: float, base_url: str, status_override: str | None = None) -> dict[str, Any]:
        status = self.status(now)
        tracks: list[dict[str, Any]] = []
        if status == "FIRST_SUCCESS":
            tracks = [self.track(1, base_url, complete=False)]
        elif status == "SUCCESS" and self.outcome != "task_empty_result":
            tracks = [self.track(n, base_url, complete=True) for n in (1, 2)]
        error_code: int | None = None
        error_message: str | None = None
        if status == "SENSITIVE_WORD_ERROR":
            error_code = int(self.fault.get("code", 400))
            error_message = str(
                self.fault.get("message")
                or "Your lyrics or style contain sensitive words or artist names. Please revise them."
            )
        elif self.outcome == "task_fail" and status != "SUCCESS" and self.done(now):
            error_code = int(self.fault.get("code", 501))
            error_message = str(self.fault.get("message") or "Audio generation failed. Please try again.")
        return {
            "taskId": self.task_id,
            "parentMusicId": "",
            "param": json.dumps(self.request),
            "response": {"taskId": self.task_id, "sunoData": tracks},
            "status": status_override or status,
            "type": "GENERATE",
            "operationType": "generate",
            "errorCode": error_code,
            "errorMessage": error_message,
        }

    def summary(self, now: float) -> dict[str, Any]:
        return {"status": self.status(now), "title": self.title, "style": self.style, "outcome": self.outcome}


@dataclass
class ImageTask(_Task):
    prompt: str = ""
    model: str = "google/nano-banana"
    output_format: str = "png"
    image_size: str = "1:1"
    default_unknown = "running"

    @property
    def file_name(self) -> str:
        return f"{self.task_id}.{'jpg' if self.output_format in ('jpeg', 'jpg') else 'png'}"

    def state(self, now: float) -> str:
        if not self.done(now):
            return _stage(IMAGE_STAGES, min(self.fraction(now), 0.99))
        if self.outcome in ("task_fail", "task_sensitive"):
            return "fail"
        return "success"

    def record(self, now: float, base_url: str, state_override: str | None = None) -> dict[str, Any]:
        state = self.state(now)
        elapsed_ms = int(min(now - self.created, max(self.latency, 0.0)) * 1000)
        create_ms = int(self.created_wall * 1000)
        result_json, fail_code, fail_msg = "", "", ""
        if state == "success":
            urls = [] if self.outcome == "task_empty_result" else [f"{base_url}/files/image/{self.file_name}"]
            result_json = json.dumps({"resultUrls": urls})
        elif state == "fail" and self.outcome == "task_sensitive":
            fail_code = str(self.fault.get("code", "400"))
            fail_msg = str(
                self.fault.get("message") or "The prompt was flagged as sensitive by the content policy."
            )
        elif state == "fail":
            fail_code = str(self.fault.get("code", "500"))
            fail_msg = str(self.fault.get("message") or "Internal Error: image generation failed.")
        terminal = state in ("success", "fail")
        return {
            "taskId": self.task_id,
            "model": self.model,
            "state": state_override or state,
            "param": json.dumps(self.request),
            "resultJson": result_json,
            "failCode": fail_code,
            "failMsg": fail_msg,
            "costTime": elapsed_ms if terminal else 0,
            "completeTime": create_ms + elapsed_ms if terminal else None,
            "createTime": create_ms,
            "updateTime": create_ms + elapsed_ms,
        }

    def summary(self, now: float) -> dict[str, Any]:
        return {"state": self.state(now), "prompt": self.prompt[:120], "outcome": self.outcome}
