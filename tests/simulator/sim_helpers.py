"""Request bodies and a polling helper shared by the simulator tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

SONG_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "song_options",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"options": {"type": "array", "minItems": 3, "maxItems": 3}},
            "required": ["options"],
        },
    },
}
CONCEPT = "A slow jazz ballad about rain on a Paris window at midnight, with piano and saxophone"


def chat_body(concept: str = CONCEPT, response_format: dict | None = SONG_SCHEMA, **extra: Any) -> dict:
    body = {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "system", "content": "You write songs."}, {"role": "user", "content": concept}],
        **extra,
    }
    if response_format is not None:
        body["response_format"] = response_format
    return body


def suno_body(**overrides: Any) -> dict:
    body = {
        "customMode": True,
        "instrumental": False,
        "prompt": "[Verse]\nRain on the window\n[Chorus]\nMidnight in Paris",
        "style": "jazz, ballad, piano, slow",
        "title": "Midnight Rain",
        "model": "V4_5",
        "callBackUrl": "https://example.invalid/callback",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def image_body(prompt: str = 'Square album cover art for the song "Midnight Rain"') -> dict:
    return {
        "model": "google/nano-banana",
        "input": {"prompt": prompt, "output_format": "png", "image_size": "1:1"},
    }


def poll_until(fetch: Callable[[], dict], done: Callable[[dict], bool], timeout: float = 5.0) -> list[dict]:
    """Poll until done(record) and return every record seen."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(fetch())
        if done(seen[-1]):
            return seen
        time.sleep(0.03)
    raise AssertionError(f"not done after {timeout}s: {seen[-1]}")
