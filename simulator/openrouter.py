"""OpenRouter routes: chat completions (JSON, text, images, SSE), the models list, one model, key info."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from simulator import catalog, llm
from simulator.cover import render_cover
from simulator.faults import Fault
from simulator.state import SimState
from simulator.wsgi import BadJSON, Request, Response, json_response

DEFAULT_MODEL = "openai/gpt-4o-mini"
ERROR_TYPES = {
    400: ("invalid_request", "Invalid request"),
    401: ("authentication", "No auth credentials found"),
    402: ("payment_required", "Insufficient credits. Add more using https://openrouter.ai/credits"),
    403: ("permission_denied", "Input was flagged by moderation"),
    404: ("not_found", "No endpoints found for this model"),
    408: ("timeout", "Request timed out"),
    429: ("rate_limit_exceeded", "Rate limit exceeded: too many requests"),
    500: ("server", "Internal Server Error"),
    502: ("provider_unavailable", "Provider returned error"),
    503: ("provider_overloaded", "No available provider could serve the request"),
    504: ("timeout", "The provider did not respond in time"),
}


def error(status: int, message: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    error_type, default = ERROR_TYPES.get(status, ("server", "Error"))
    metadata: dict[str, Any] = {"error_type": error_type}
    if status == 403:
        metadata.update(reasons=["simulated"], flagged_input="...", provider_name="SimProvider")
    payload = {"error": {"code": status, "message": message or default, "metadata": metadata}}
    return json_response(payload, status, headers)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _validate(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadJSON("'messages' must be a non-empty array")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in (
            "system",
            "user",
            "assistant",
            "tool",
            "developer",
        ):
            raise BadJSON("each message needs a valid 'role'")
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str) or "/" not in model:
        raise BadJSON(f"{model} is not a valid model ID")
    rf = body.get("response_format")
    if rf is not None and (
        not isinstance(rf, dict) or rf.get("type") not in ("json_object", "json_schema", "text")
    ):
        raise BadJSON("response_format.type must be one of json_object, json_schema, text")
    if (
        isinstance(rf, dict)
        and rf.get("type") == "json_schema"
        and not isinstance(rf.get("json_schema"), dict)
    ):
        raise BadJSON("response_format.json_schema must be an object with name and schema")
    return model, messages


def _kind(rf: Any, all_text: str) -> tuple[str | None, int]:
    """Which JSON reply the request wants ('song_options', 'image_prompt', 'generic') and the option count."""
    if not isinstance(rf, dict) or rf.get("type") == "text":
        return None, 3
    if rf["type"] == "json_schema":
        spec = rf["json_schema"]
        props = (spec.get("schema") or {}).get("properties") or {}
        options = props.get("options") or {}
        count = max(int(options.get("minItems", 3)), min(3, int(options.get("maxItems", 3))))
        name = spec.get("name")
        if name == "image_prompt" or (
            name != "song_options" and "prompt" in props and "options" not in props
        ):
            return "image_prompt", 3
        if name == "song_options" or "options" in props:
            return "song_options", count
        return "generic", 3
    lower = all_text.lower()
    if any(w in lower for w in ("image prompt", "image_prompt", "album cover", "cover art", "cover image")):
        return "image_prompt", 3
    if "option" in lower or "lyrics" in lower:
        return "song_options", 3
    return "generic", 3


def _payload(kind: str, concept: str, count: int) -> dict[str, Any]:
    if kind == "song_options":
        return {"options": llm.song_options(concept, count)}
    if kind == "image_prompt":
        return {"prompt": llm.image_prompt(concept)}
    return {"result": llm.plain_reply(concept)}


def _content(kind: str | None, concept: str, count: int, fault: Fault | None) -> str | None:
    name = kind or "text"
    fault_kind = fault.kind if fault else None
    if fault_kind == "llm_empty":
        return fault.get("content") if fault else None
    if fault_kind == "llm_not_json":
        return f"Sure! Here are some ideas for a song about {concept[:60]!r}. A warm ballad would suit it."
    if kind is None:
        return llm.plain_reply(concept)
    payload = _payload(kind, concept, count)
    if fault_kind == "llm_missing_fields":
        drop = fault.get("fields", ["lyrics"] if name == "song_options" else ["prompt"]) if fault else []
        if name == "song_options":
            payload = {"options": [{k: v for k, v in o.items() if k not in drop} for o in payload["options"]]}
        else:
            payload = {k: v for k, v in payload.items() if k not in drop}
    elif fault_kind == "llm_zero_options":
        payload = {"options": []} if name == "song_options" else {"prompt": ""}
    elif fault_kind == "llm_wrong_types":
        payload = llm.wrong_types(name)
    text = json.dumps(payload, ensure_ascii=False)
    if fault_kind == "llm_prose_around_json":
        return f"Here is what you asked for:\n\n```json\n{text}\n```\n\nLet me know if you want any changes!"
    return text


def _images(body: dict[str, Any], concept: str) -> list[dict[str, Any]] | None:
    if "image" not in (body.get("modalities") or []):
        return None
    ratio = (body.get("image_config") or {}).get("aspect_ratio", "1:1")
    png = render_cover(concept or "abstract cover", image_size=ratio)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return [{"type": "image_url", "image_url": {"url": url}}]


def chat(state: SimState, req: Request, fault: Fault | None) -> Response:
    body = req.json()
    model, messages = _validate(body)
    if state.latency.llm > 0:
        time.sleep(state.latency.llm)
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    concept = users[-1] if users else ""
    all_text = "\n".join(_text(m.get("content")) for m in messages)
    state.count_submission("llm")
    if fault and fault.kind == "llm_error_in_200":
        code = int(fault.get("code", 502))
        message = fault.get("message", "Provider returned error")
        return json_response(
            {"error": {"code": code, "message": message, "metadata": {"provider_name": "SimProvider"}}}
        )
    kind, count = _kind(body.get("response_format"), all_text)
    content = _content(kind, concept, count, fault)
    images = _images(body, concept)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "reasoning": None}
    if images is not None:
        message["images"] = images
    prompt_tokens = len(all_text) // 4 + 1
    completion_tokens = len(content or "") // 4 + (1 if content else 0)
    p_price, c_price = catalog.price(model)
    reply = {
        "id": f"gen-{int(time.time())}-{secrets.token_hex(10)}",
        "provider": "SimProvider",
        "model": model,
        "object": "chat.completion",
        "created": int(time.time()),
        "choices": [
            {
                "logprobs": None,
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "index": 0,
                "message": message,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": round(prompt_tokens * p_price + completion_tokens * c_price, 10),
        },
    }
    return _sse(reply) if body.get("stream") else json_response(reply)


def _sse(reply: dict[str, Any]) -> Response:
    """Streaming variant: a comment line, one content delta, a final chunk with usage, then [DONE]."""
    base = {k: reply[k] for k in ("id", "provider", "model", "created")} | {"object": "chat.completion.chunk"}
    content = reply["choices"][0]["message"]["content"]
    first = base | {
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}]
    }
    last = base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": reply["usage"]}
    events = [
        ": OPENROUTER PROCESSING",
        f"data: {json.dumps(first)}",
        f"data: {json.dumps(last)}",
        "data: [DONE]",
    ]
    text = "".join(f"{e}\n\n" for e in events)
    return Response(200, text.encode(), content_type="text/event-stream")


def models(_state: SimState, req: Request, _fault: Fault | None) -> Response:
    data = catalog.list_models(req.query.get("output_modalities", "text"))
    return json_response({"data": data})


def model(_state: SimState, req: Request, _fault: Fault | None) -> Response:
    slug = req.path.removeprefix("/api/v1/model/").removesuffix("/endpoints")
    found = catalog.find_model(slug)
    if found is None:
        return error(404, f"Model {slug} not found")
    return json_response({"data": found})


def key(state: SimState, _req: Request, _fault: Fault | None) -> Response:
    with state.lock:
        used = state.submissions["llm"] * 0.0001
    data = {
        "label": "sk-or-v1-sim...",
        "limit": None,
        "limit_remaining": None,
        "limit_reset": None,
        "usage": used,
        "usage_daily": used,
        "usage_weekly": used,
        "usage_monthly": used,
        "is_free_tier": False,
    }
    return json_response({"data": data})
