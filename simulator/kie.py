"""kie.ai routes: Suno generate / record-info and Market jobs createTask / recordInfo (google/nano-banana)."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from simulator import llm
from simulator.cover import SIZES
from simulator.faults import TASK_KINDS, Fault
from simulator.state import SimState
from simulator.tasks import ImageTask, MusicTask
from simulator.wsgi import Request, Response, json_response

SUNO_MODELS = frozenset(
    {"V3_5", "V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5", "V6", "V6_MINI", "V6_WILD"}
)
IMAGE_MODELS = frozenset(
    {"google/nano-banana", "google/nano-banana-edit", "nano-banana-2", "nano-banana-pro"}
)
TITLE_MAX, STYLE_MAX, LYRICS_MAX, IDEA_MAX, IMAGE_PROMPT_MAX = 80, 200, 3000, 400, 5000
BODY_CODE_MESSAGES = {
    400: "Invalid parameters",
    401: "You do not have access permissions",
    402: "The current credits are insufficient. Please top up.",
    404: "Not found",
    409: "Conflict",
    422: "Validation error",
    429: "The call frequency is too high. Please try again later.",
    455: "The system is currently undergoing maintenance. Please try again later.",
    500: "Server error. Please try again later.",
    501: "Generation failed",
    505: "The feature is disabled",
}


def body_error(
    code: int, msg: str | None = None, http_status: int = 200, headers: list | None = None
) -> Response:
    payload = {"code": code, "msg": msg or BODY_CODE_MESSAGES.get(code, "Error"), "data": None}
    return json_response(payload, http_status, headers)


def _ok(data: dict[str, Any]) -> Response:
    return json_response({"code": 200, "msg": "success", "data": data})


def _suno_problem(body: dict[str, Any]) -> tuple[int, str] | None:
    for name in ("customMode", "instrumental"):
        if not isinstance(body.get(name), bool):
            return 422, f"Please enter {name} (boolean)"
    if not body.get("model"):
        return 422, "Please enter model"
    if body["model"] not in SUNO_MODELS:
        return 422, f"model must be one of {', '.join(sorted(SUNO_MODELS))}"
    if not body.get("callBackUrl"):
        return 422, "Please enter callBackUrl"
    if body["customMode"]:
        needed = ("style", "title") if body["instrumental"] else ("style", "prompt", "title")
    else:
        needed = ("prompt",)
    for name in needed:
        if not isinstance(body.get(name), str) or not body[name].strip():
            return 422, f"Please enter {name}"
    limits = {
        "title": TITLE_MAX,
        "style": STYLE_MAX,
        "prompt": LYRICS_MAX if body["customMode"] else IDEA_MAX,
    }
    for name, limit in limits.items():
        value = body.get(name)
        if isinstance(value, str) and len(value) > limit:
            return 400, f"{name} is too long: {len(value)} characters (max {limit})"
    return None


def suno_generate(state: SimState, req: Request, fault: Fault | None) -> Response:
    body = req.json()
    problem = _suno_problem(body)
    if problem:
        return body_error(*problem)
    prompt = str(body.get("prompt") or "")
    if body["customMode"]:
        title, style, lyrics = body["title"], body["style"], "" if body["instrumental"] else prompt
    else:
        option = llm.song_options(prompt, 1)[0]
        title, style, lyrics = (
            option["title"],
            option["style"],
            "" if body["instrumental"] else option["lyrics"],
        )
    task = MusicTask(
        task_id=uuid.uuid4().hex,
        created=state.now(),
        created_wall=time.time(),
        latency=state.latency.music,
        request=body,
        title=title,
        style=style,
        lyrics=lyrics,
        model=body["model"],
    )
    if fault and fault.kind in TASK_KINDS:
        task.attach(fault.kind, fault.params)
    with state.lock:
        state.music[task.task_id] = task
        state.submissions["music"] += 1
    return _ok({"taskId": task.task_id})


def _poll_override(task: MusicTask | ImageTask, fault: Fault | None) -> str | None:
    unknown = task.take_unknown()
    if fault and fault.kind == "task_unknown_status":
        return str(fault.get("value") or task.default_unknown)
    if fault and fault.kind in TASK_KINDS:
        task.attach(fault.kind, fault.params)
    return unknown


def suno_poll(state: SimState, req: Request, fault: Fault | None) -> Response:
    task_id = req.query.get("taskId", "").strip()
    if not task_id:
        return body_error(400, "taskId is required")
    with state.lock:
        task = state.music.get(task_id)
        if task is None:
            return body_error(404, "Task not found")
        override = _poll_override(task, fault)
        return _ok(task.record(state.now(), req.base_url, override))


def _image_problem(body: dict[str, Any]) -> tuple[int, str] | None:
    if not body.get("model"):
        return 422, "model is required"
    if body["model"] not in IMAGE_MODELS:
        return 422, f"model {body['model']!r} is not supported"
    data = body.get("input")
    if not isinstance(data, dict):
        return 422, "input is required"
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return 422, "input.prompt is required"
    if len(prompt) > IMAGE_PROMPT_MAX:
        return 422, f"input.prompt is too long: {len(prompt)} characters (max {IMAGE_PROMPT_MAX})"
    if data.get("output_format", "png") not in ("png", "jpeg", "jpg"):
        return 422, "input.output_format must be png or jpeg"
    size = data.get("image_size", data.get("aspect_ratio", "1:1"))
    if size not in SIZES and size != "auto":
        return 422, f"input.image_size must be one of {', '.join([*SIZES, 'auto'])}"
    return None


def image_create(state: SimState, req: Request, fault: Fault | None) -> Response:
    body = req.json()
    problem = _image_problem(body)
    if problem:
        return body_error(*problem)
    data = body["input"]
    task = ImageTask(
        task_id=f"task_google_{int(time.time() * 1000)}{secrets.token_hex(3)}",
        created=state.now(),
        created_wall=time.time(),
        latency=state.latency.image,
        request=body,
        prompt=data["prompt"],
        model=body["model"],
        output_format=data.get("output_format", "png"),
        image_size=data.get("image_size", data.get("aspect_ratio", "1:1")),
    )
    if fault and fault.kind in TASK_KINDS:
        task.attach(fault.kind, fault.params)
    with state.lock:
        state.images[task.task_id] = task
        state.submissions["image"] += 1
    return _ok({"taskId": task.task_id})


def image_poll(state: SimState, req: Request, fault: Fault | None) -> Response:
    task_id = req.query.get("taskId", "").strip()
    if not task_id:
        return body_error(400, "taskId is required")
    with state.lock:
        task = state.images.get(task_id)
        if task is None:
            return body_error(422, "recordInfo is null")
        override = _poll_override(task, fault)
        return _ok(task.record(state.now(), req.base_url, override))
