"""Capability interfaces (text, music, image) and the frozen results they return."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

TaskState = Literal["running", "succeeded", "failed"]


@dataclass(frozen=True)
class ChatResult:
    content: str
    model: str
    usage: dict[str, Any] = field(default_factory=dict)
    generation_id: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    context_length: int | None
    prompt_price: Decimal | None
    completion_price: Decimal | None
    description: str = ""


@dataclass(frozen=True)
class Track:
    id: str
    audio_url: str
    title: str = ""
    tags: str = ""
    duration: float | None = None
    image_url: str | None = None


@dataclass(frozen=True)
class MusicStatus:
    state: TaskState
    raw_status: str
    tracks: tuple[Track, ...] = ()
    error: str | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class ImageStatus:
    state: TaskState
    raw_status: str
    urls: tuple[str, ...] = ()
    error: str | None = None


class LLMProvider(Protocol):
    name: str

    def chat(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        response_format: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        request_id: str | None = None,
    ) -> ChatResult: ...

    def list_models(self, *, request_id: str | None = None) -> list[ModelInfo]: ...


class MusicProvider(Protocol):
    name: str
    model: str

    def submit(self, *, title: str, style: str, lyrics: str, request_id: str | None = None) -> str:
        """Start a paid generation and return the remote task id."""
        ...

    def poll(self, task_id: str, *, request_id: str | None = None) -> MusicStatus: ...


class ImageProvider(Protocol):
    name: str
    model: str

    def submit(self, *, prompt: str, request_id: str | None = None) -> str:
        """Start a paid generation and return the remote task id."""
        ...

    def poll(self, task_id: str, *, request_id: str | None = None) -> ImageStatus: ...
