"""Read models: the one set of response types the pages render and the CLI prints as JSON."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


class JobSummary(_View):
    id: uuid.UUID
    owner: str
    concept: str
    status: str
    current_step: str | None
    llm_model: str
    title: str | None
    attempt: int
    batch_id: uuid.UUID | None
    error_step: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class StepRun(_View):
    """One run of one step, from its job_events row."""

    step: str
    label: str
    attempt: int
    status: str
    service: str | None
    model: str | None
    remote_task_id: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    output: dict[str, Any] | None
    message: str | None


class EventView(_View):
    id: int
    attempt: int
    kind: str
    step: str | None
    status: str
    service: str | None
    message: str | None
    actor: str | None
    at: datetime
    output: dict[str, Any] | None


class ArtifactView(_View):
    id: int
    kind: str
    version: int
    content_type: str
    size_bytes: int
    sha256: str
    path: str
    created_at: datetime


class JobDetail(JobSummary):
    correlation_id: str
    llm_model_used: str | None
    llm_usage: dict[str, Any] | None
    song_options: list[dict[str, Any]] | None
    chosen_index: int | None
    chosen_option: dict[str, Any] | None
    image_prompt: str | None
    music_task_id: str | None
    image_task_id: str | None
    cancel_requested: bool
    steps: list[StepRun]
    events: list[EventView]
    audio: ArtifactView | None
    image: ArtifactView | None
    previous_artifacts: list[ArtifactView]


class JobPage(_View):
    items: list[JobSummary]
    next_cursor: str | None


def all_schemas() -> dict[str, Any]:
    """JSON Schema of every read model, for anyone integrating with `core.cli --json`."""
    return {
        m.__name__: m.model_json_schema() for m in (JobSummary, JobDetail, JobPage, StepRun, ArtifactView)
    }


class RetryOutcome(JobSummary):
    """A job after a retry or regenerate request: `retried` is False when nothing was changed."""

    retried: bool
    message: str


class BulkRetry(_View):
    retried: list[uuid.UUID]
    messages: list[str]
