"""One function per pipeline step: each reads a job snapshot and returns Done or Wait, never the DB."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from core.config import Settings
from core.downloads import Downloader, looks_like_audio, looks_like_image
from core.logs import get_logger
from core.pipeline import prompts
from core.pipeline.errors import StepFailed
from core.providers.base import ChatResult, ImageProvider, LLMProvider, MusicProvider
from core.providers.errors import InvalidOutputError, RetryableProviderError
from core.providers.openrouter import extract_json
from core.storage import LocalArtifactStore, StoredFile

SUNO_TITLE_MAX, SUNO_STYLE_MAX, SUNO_LYRICS_MAX = 80, 200, 3000
log = get_logger("songsmith.steps")


@dataclass(frozen=True)
class JobSnapshot:
    id: uuid.UUID
    user_id: int
    batch_id: uuid.UUID | None
    concept: str
    llm_model: str
    attempt: int
    correlation_id: str
    song_options: list[Any] | None
    chosen_option: dict[str, Any] | None
    image_prompt: str | None
    music_task_id: str | None
    music_submit_attempts: int
    image_task_id: str | None
    image_submit_attempts: int
    audio_artifact_id: int | None
    image_artifact_id: int | None
    step_polls: int

    @classmethod
    def of(cls, job: Any) -> JobSnapshot:
        """A frozen copy of the fields a step reads, taken from a Job row."""
        return cls(**{name: getattr(job, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class StepContext:
    job: JobSnapshot
    settings: Settings
    llm: LLMProvider
    music: MusicProvider
    image: ImageProvider
    downloader: Downloader
    storage: LocalArtifactStore
    now: datetime
    step_started_at: datetime
    artifact_exists: Callable[[int | None], bool] = lambda _id: False


@dataclass(frozen=True)
class NewArtifact:
    kind: str
    stored: StoredFile
    content_type: str
    source_url: str


@dataclass(frozen=True)
class Done:
    service: str
    updates: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    remote_task_id: str | None = None
    artifact: NewArtifact | None = None


@dataclass(frozen=True)
class Wait:
    """Check back later: the runner schedules this same step through RQ's scheduler."""

    delay: float
    service: str
    updates: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    remote_task_id: str | None = None
    polled: bool = False


StepResult = Done | Wait


def _ask_json(
    llm: LLMProvider,
    *,
    model: str,
    messages: list[dict[str, Any]],
    name: str,
    schema: dict[str, Any],
    parse: type[BaseModel],
    request_id: str,
) -> tuple[BaseModel, ChatResult, int]:
    """One call, and one repair call that shows the model its validation error; then fail clearly."""
    fmt = prompts.response_format(name, schema)
    result = llm.chat(model=model, messages=messages, response_format=fmt, request_id=request_id)
    try:
        return parse.model_validate(extract_json(result.content)), result, 1
    except (InvalidOutputError, ValidationError) as exc:
        problem = prompts.describe_validation_error(exc) if isinstance(exc, ValidationError) else exc.message
    repair = [
        *messages,
        {"role": "assistant", "content": (result.content or "")[:4000]},
        {
            "role": "user",
            "content": f"Your reply was not valid: {problem}. Reply again with only the JSON object.",
        },
    ]
    second = llm.chat(model=model, messages=repair, response_format=fmt, request_id=request_id)
    try:
        return parse.model_validate(extract_json(second.content)), second, 2
    except (InvalidOutputError, ValidationError) as exc:
        again = prompts.describe_validation_error(exc) if isinstance(exc, ValidationError) else exc.message
        raise StepFailed(
            f"The model {second.model or model} returned invalid {name.replace('_', ' ')} twice ({again}). "
            "Retry, or choose another model in Settings."
        ) from None


def _usage(result: ChatResult, calls: int) -> dict[str, Any]:
    return {**(result.usage or {}), "calls": calls}


def write_options(ctx: StepContext) -> StepResult:
    parsed, result, calls = _ask_json(
        ctx.llm,
        model=ctx.job.llm_model,
        messages=prompts.song_options_messages(ctx.job.concept),
        name=prompts.SONG_OPTIONS,
        schema=prompts.SONG_OPTIONS_SCHEMA,
        parse=prompts.SongOptions,
        request_id=ctx.job.correlation_id,
    )
    options = [o.model_dump() for o in parsed.options]  # type: ignore[attr-defined]
    return Done(
        service=ctx.llm.name,
        model=result.model,
        updates={"song_options": options, "llm_model_used": result.model, "llm_usage": _usage(result, calls)},
        output={"options": options, "usage": _usage(result, calls)},
    )


_WORD = re.compile(r"[a-z']{3,}")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def choose_option(ctx: StepContext) -> StepResult:
    """Pick the option whose title, style and lyrics share the most words with the concept."""
    options = ctx.job.song_options or []
    if not options:
        raise StepFailed("There are no song options to choose from.")
    concept = _words(ctx.job.concept)

    def score(item: tuple[int, dict[str, Any]]) -> tuple[int, int]:
        i, opt = item
        text = f"{opt.get('title', '')} {opt.get('style', '')} {opt.get('lyrics', '')}"
        return (len(concept & _words(text)), -i)

    index, option = max(enumerate(options), key=score)
    chosen = {
        "title": str(option["title"])[:SUNO_TITLE_MAX],
        "style": str(option["style"])[:SUNO_STYLE_MAX],
        "lyrics": str(option["lyrics"])[:SUNO_LYRICS_MAX],
    }
    return Done(
        service="Songsmith",
        updates={"chosen_index": index, "chosen_option": chosen},
        output={
            "chosen_index": index,
            "title": chosen["title"],
            "reason": "most words in common with the concept",
        },
    )


def poll_delay(settings: Settings, polls: int) -> float:
    return min(settings.poll_max_seconds, settings.poll_initial_seconds * settings.poll_growth**polls)


def _late(ctx: StepContext, provider: str, deadline: float) -> str | None:
    """The failure reason once the step has waited past its deadline, else None."""
    elapsed = (ctx.now - ctx.step_started_at).total_seconds()
    if elapsed <= deadline:
        return None
    within = f"{deadline:.0f} seconds" if deadline < 120 else f"{deadline / 60:.0f} minutes"
    return (
        f"{provider} did not finish the task within {within} "
        f"({ctx.job.step_polls} checks); retry the job to keep waiting on the same task."
    )


def _poll_within_deadline(ctx: StepContext, provider: str, deadline: float, poll: Callable[[], Any]) -> Any:
    """Look even when late: under a backlog the checks themselves can be delayed past the deadline, and a
    paid task that finished is kept however late we look. Past the deadline, a task still running or a
    provider that cannot answer fails the step with the deadline as the reason."""
    late = _late(ctx, provider, deadline)
    try:
        status = poll()
    except RetryableProviderError:
        if late:
            raise StepFailed(late) from None
        raise
    if late and status.state == "running":
        raise StepFailed(late)
    return status


def _download(ctx: StepContext, *, kind: str, url: str) -> NewArtifact:
    allowed = ("audio/",) if kind == "audio" else ("image/",)
    got = ctx.downloader.fetch(url, kind=kind, allowed_types=allowed, request_id=ctx.job.correlation_id)
    valid = looks_like_audio(got.data) if kind == "audio" else looks_like_image(got.data)
    if not valid:
        raise StepFailed(f"The {kind} file from the provider is not a valid {kind} file.")
    ext = _extension(got.content_type, kind)
    path = f"{ctx.job.id}/{kind}-a{ctx.job.attempt}-{uuid.uuid4().hex[:8]}.{ext}"
    stored = ctx.storage.save(path, got.data)
    return NewArtifact(kind=kind, stored=stored, content_type=got.content_type, source_url=url)


def _extension(content_type: str, kind: str) -> str:
    base = content_type.split(";")[0].strip().lower()
    table = {
        "audio/wav": "wav",
        "audio/x-wav": "wav",
        "audio/wave": "wav",
        "audio/mpeg": "mp3",
        "audio/mp3": "mp3",
        "audio/ogg": "ogg",
        "audio/flac": "flac",
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/webp": "webp",
        "image/gif": "gif",
    }
    return table.get(base, "bin" if kind == "audio" else "img")


def _ambiguous_guard(provider: str, attempts: int) -> None:
    """A previous submit may have been accepted and charged: the contract allows one resubmit, no more."""
    if attempts == 2:
        log.warning("possible_double_charge", provider=provider, reason="resubmit after an unknown outcome")
    if attempts > 2:
        raise StepFailed(
            f"{provider} may already have accepted this task but gave no task id twice; not submitting "
            "again to avoid paying twice. Retry the job once the provider is healthy."
        )


def render_audio(ctx: StepContext) -> StepResult:
    job, music = ctx.job, ctx.music
    option = job.chosen_option or {}
    if job.music_task_id is None:
        _ambiguous_guard(music.name, job.music_submit_attempts)
        task_id = music.submit(
            title=option.get("title", ""),
            style=option.get("style", ""),
            lyrics=option.get("lyrics", ""),
            request_id=job.correlation_id,
        )
        return Wait(
            delay=poll_delay(ctx.settings, 0),
            service=music.name,
            model=music.model,
            remote_task_id=task_id,
            updates={"music_task_id": task_id},
            output={"submitted": True},
        )
    task_id = job.music_task_id
    status = _poll_within_deadline(
        ctx,
        music.name,
        ctx.settings.music_deadline_seconds,
        lambda: music.poll(task_id, request_id=job.correlation_id),
    )
    if status.state == "running":
        return Wait(
            delay=poll_delay(ctx.settings, job.step_polls + 1),
            service=music.name,
            model=music.model,
            remote_task_id=job.music_task_id,
            output={"remote_status": status.raw_status},
            polled=True,
        )
    if status.state == "failed":
        raise StepFailed(status.error or f"{music.name} reported the task as {status.raw_status}.")
    track = status.tracks[0]
    artifact = _download(ctx, kind="audio", url=track.audio_url)
    result = {
        "track_id": track.id,
        "title": track.title,
        "tags": track.tags,
        "duration": track.duration,
        "tracks": len(status.tracks),
    }
    return Done(
        service=music.name,
        model=music.model,
        remote_task_id=job.music_task_id,
        updates={"music_result": result},
        output={**result, "audio_path": artifact.stored.path, "bytes": artifact.stored.size_bytes},
        artifact=artifact,
    )


def write_image_prompt(ctx: StepContext) -> StepResult:
    parsed, result, calls = _ask_json(
        ctx.llm,
        model=ctx.job.llm_model,
        messages=prompts.image_prompt_messages(ctx.job.concept, ctx.job.chosen_option or {}),
        name=prompts.IMAGE_PROMPT,
        schema=prompts.IMAGE_PROMPT_SCHEMA,
        parse=prompts.ImagePrompt,
        request_id=ctx.job.correlation_id,
    )
    prompt = parsed.prompt  # type: ignore[attr-defined]
    return Done(
        service=ctx.llm.name,
        model=result.model,
        updates={"image_prompt": prompt},
        output={"prompt": prompt, "usage": _usage(result, calls)},
    )


def render_cover(ctx: StepContext) -> StepResult:
    job, image = ctx.job, ctx.image
    if job.image_task_id is None:
        _ambiguous_guard(image.name, job.image_submit_attempts)
        task_id = image.submit(prompt=job.image_prompt or "", request_id=job.correlation_id)
        return Wait(
            delay=poll_delay(ctx.settings, 0),
            service=image.name,
            model=image.model,
            remote_task_id=task_id,
            updates={"image_task_id": task_id},
            output={"submitted": True},
        )
    image_task = job.image_task_id
    status = _poll_within_deadline(
        ctx,
        image.name,
        ctx.settings.image_deadline_seconds,
        lambda: image.poll(image_task, request_id=job.correlation_id),
    )
    if status.state == "running":
        return Wait(
            delay=poll_delay(ctx.settings, job.step_polls + 1),
            service=image.name,
            model=image.model,
            remote_task_id=job.image_task_id,
            output={"remote_status": status.raw_status},
            polled=True,
        )
    if status.state == "failed":
        raise StepFailed(status.error or f"{image.name} reported the task as {status.raw_status}.")
    artifact = _download(ctx, kind="image", url=status.urls[0])
    return Done(
        service=image.name,
        model=image.model,
        remote_task_id=job.image_task_id,
        updates={"image_result": {"urls": len(status.urls)}},
        output={"image_path": artifact.stored.path, "bytes": artifact.stored.size_bytes},
        artifact=artifact,
    )


def store(ctx: StepContext) -> StepResult:
    """Both files must be on disk before the job may say completed."""
    job = ctx.job
    missing = [
        kind
        for kind, art_id in (("audio", job.audio_artifact_id), ("cover image", job.image_artifact_id))
        if not ctx.artifact_exists(art_id)
    ]
    if missing:
        raise StepFailed(f"The stored {' and '.join(missing)} file is missing; retry from the start.")
    return Done(service="Songsmith", output={"stored": True})


STEP_FUNCTIONS: dict[str, Callable[[StepContext], StepResult]] = {
    "write_options": write_options,
    "choose_option": choose_option,
    "render_audio": render_audio,
    "write_image_prompt": write_image_prompt,
    "render_cover": render_cover,
    "store": store,
}
