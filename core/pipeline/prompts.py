"""What we ask the LLM for (JSON schemas and messages) and how its answers are validated."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

SONG_OPTIONS = "song_options"
IMAGE_PROMPT = "image_prompt"
OPTION_COUNT = 3

SONG_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "options": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "Song title, at most 80 characters"},
                    "style": {
                        "type": "string",
                        "description": "Comma-separated style tags, at most 200 characters",
                    },
                    "lyrics": {
                        "type": "string",
                        "description": "Lyrics with [Verse]/[Chorus] tags, under 3000 chars",
                    },
                },
                "required": ["title", "style", "lyrics"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["options"],
    "additionalProperties": False,
}

IMAGE_PROMPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "description": "One paragraph describing the album cover"}},
    "required": ["prompt"],
    "additionalProperties": False,
}


def _clean(value: str) -> str:
    return value.strip()


class SongOption(BaseModel):
    title: str = Field(min_length=1)
    style: str = Field(min_length=1)
    lyrics: str = Field(min_length=1)

    _strip = field_validator("title", "style", "lyrics", mode="after")(_clean)

    @field_validator("title", "style", "lyrics", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be blank")
        return value


class SongOptions(BaseModel):
    options: list[SongOption] = Field(min_length=1, max_length=10)


class ImagePrompt(BaseModel):
    prompt: str = Field(min_length=1, max_length=5000)

    @field_validator("prompt", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


def response_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def song_options_messages(concept: str) -> list[dict[str, Any]]:
    system = (
        "You are a songwriter. Write exactly "
        f"{OPTION_COUNT} distinct song options for the user's concept. Reply with JSON only: "
        '{"options": [{"title": ..., "style": ..., "lyrics": ...}]}. Titles at most 80 characters, '
        "style as comma-separated genre/mood/instrument tags at most 200 characters, lyrics with "
        "[Verse] and [Chorus] section tags and under 3000 characters. No artist or brand names."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": concept}]


def image_prompt_messages(concept: str, option: dict[str, Any]) -> list[dict[str, Any]]:
    system = (
        "You design album covers. Write one vivid image prompt for the cover of this song: subject, "
        "palette, composition, mood. No text or lettering in the image. Reply with JSON only: "
        '{"prompt": "..."}.'
    )
    lyrics = str(option.get("lyrics", ""))[:1200]
    user = (
        f"Title: {option.get('title', '')}\nStyle: {option.get('style', '')}\n"
        f"Concept: {concept}\nLyrics excerpt:\n{lyrics}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def describe_validation_error(exc: ValidationError | ValueError) -> str:
    """A short, model-readable description of what was wrong (sent back in the repair request)."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "root"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)[:300]
