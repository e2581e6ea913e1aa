"""Artifact downloads: /files/audio/<task>-<n>.wav and /files/image/<name>, rendered lazily and cached."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from functools import partial

from simulator.audio import render_wav
from simulator.cover import render_cover
from simulator.faults import Fault
from simulator.state import SimState
from simulator.wsgi import Request, Response

_AUDIO = re.compile(r"^/files/audio/(?P<task>[\w-]+)-(?P<n>[12])\.wav$")
_SONG_COVER = re.compile(r"^/files/image/(?P<task>[0-9a-f]{32})-(?P<n>[12])\.(?P<ext>jpg|png)$")
_IMAGE = re.compile(r"^/files/image/(?P<task>[\w-]+)\.(?P<ext>png|jpg)$")
_CHUNK = 64 * 1024


def not_found(message: str = "Not Found: the file does not exist or the URL has expired") -> Response:
    return Response(404, message.encode(), content_type="text/plain; charset=utf-8")


def _job(state: SimState, path: str) -> tuple[Callable[[], bytes], str] | None:
    """What to render for a path (caller holds the lock), or None for an unknown or expired id."""
    if m := _AUDIO.match(path):
        song = state.music.get(m["task"])
        return (partial(render_wav, song.style, song.title, int(m["n"])), "audio/wav") if song else None
    mime = "image/jpeg" if path.endswith(".jpg") else "image/png"
    if m := _SONG_COVER.match(path):
        song = state.music.get(m["task"])
        if song is None:
            return None
        prompt = f'"{song.title}" {song.style} {song.lyrics[:200]} {m["n"]}'
        return partial(render_cover, prompt, song.title, fmt=m["ext"]), mime
    if (
        (m := _IMAGE.match(path))
        and (image := state.images.get(m["task"]))
        and image.file_name.endswith(m["ext"])
    ):
        return partial(render_cover, image.prompt, image_size=image.image_size, fmt=m["ext"]), mime
    return None


def _render(state: SimState, path: str) -> tuple[bytes, str] | None:
    with state.lock:
        cached = state.files.get(path)
        if cached:
            return cached
        job = _job(state, path)
        variety = state.render_variety
    if job is None:
        return None
    shared = f"variety:{job[1]}:{zlib.crc32(path.encode()) % variety}" if variety > 0 else None
    if shared is not None:
        with state.lock:
            rendered = state.files.get(shared)
        if rendered:
            with state.lock:
                state.files.put(path, rendered)
            return rendered
    rendered = (job[0](), job[1])
    with state.lock:
        state.files.put(path, rendered)
        if shared is not None:
            state.files.put(shared, rendered)
    return rendered


def _padded(data: bytes, total: int) -> Iterator[bytes]:
    yield data
    sent = len(data)
    while sent < total:
        chunk = min(_CHUNK, total - sent)
        yield b"\0" * chunk
        sent += chunk


def serve(state: SimState, req: Request, fault: Fault | None) -> Response:
    rendered = _render(state, req.path)
    if rendered is None:
        return not_found()
    data, mime = rendered
    kind = fault.kind if fault else None
    if kind == "wrong_content_type":
        html = b"<!doctype html><html><body><h1>Access denied</h1><p>Please sign in.</p></body></html>"
        return Response(200, html, content_type="text/html; charset=utf-8")
    if kind == "corrupt":
        return Response(200, b"\x00garbage" * 512, content_type=mime)
    if kind == "oversized" and fault is not None:
        total = max(len(data), int(float(fault.get("size_mb", 50)) * 1024 * 1024))
        return Response(200, _padded(data, total), content_type=mime, length=total)
    return Response(200, data, content_type=mime, headers=[("Cache-Control", "max-age=86400")])
