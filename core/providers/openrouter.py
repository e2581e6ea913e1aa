"""OpenRouter chat-completions and model-listing client, written to contract section 1."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from core.providers.base import ChatResult, ModelInfo
from core.providers.errors import ContentRejectedError, InvalidOutputError, RetryableProviderError
from core.providers.http import Fault, JsonApi, error_for, fault_for_status, refine_content_fault

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
# Error codes inside an HTTP-200 body that mean "do not retry as-is" (contract 1.4/1.8).
_PERMANENT_BODY_CODES = frozenset({400, 401, 402, 403, 404})


def extract_json(text: str, *, provider: str = "OpenRouter") -> Any:
    """Decode an LLM's JSON answer: models wrap it in markdown fences or prose even in json mode."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidOutputError(provider, f"{provider} returned no JSON (empty answer)")
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    if start != -1:  # prose with a stray "}" after the object: decode the first object only
        try:
            return json.JSONDecoder().raw_decode(text, start)[0]
        except ValueError:
            pass
    raise InvalidOutputError(provider, f"{provider} returned text without a JSON object")


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(
            p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    return ""


class OpenRouterClient:
    name = "OpenRouter"

    def __init__(
        self,
        client: httpx.Client,
        *,
        app_url: str | None = None,
        app_title: str | None = None,
        total_timeout: float = 120.0,
        key_setting: str = "OPENROUTER_API_KEY",
    ) -> None:
        self._api = JsonApi(client, self.name, key_setting, total_timeout)
        self._headers: dict[str, str] = {}
        if app_url:  # the title header has no effect without HTTP-Referer (contract 1.1)
            self._headers["HTTP-Referer"] = app_url
            if app_title:
                self._headers["X-OpenRouter-Title"] = app_title

    def chat(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        response_format: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        request_id: str | None = None,
    ) -> ChatResult:
        body: dict[str, Any] = {"model": model, "messages": messages}
        if response_format is not None:
            body["response_format"] = response_format
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        reply = self._api.request(
            "POST", "/chat/completions", json_body=body, headers=self._headers, request_id=request_id
        )
        return self._parse_chat(reply, model)

    def _parse_chat(self, reply: Any, requested_model: str) -> ChatResult:
        if not isinstance(reply, Mapping):
            raise RetryableProviderError(self.name, "OpenRouter sent a reply that is not an object")
        if reply.get("error") is not None:
            raise self._body_error(reply)
        choices = reply.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise RetryableProviderError(self.name, "OpenRouter returned no choices (empty completion)")
        choice = choices[0]
        finish = choice.get("finish_reason")
        if choice.get("error") is not None or finish == "error":
            raise self._body_error({"error": choice.get("error")})
        if finish == "content_filter":
            raise ContentRejectedError(
                self.name,
                "OpenRouter's model stopped on its content filter — rephrase the concept and retry",
            )
        message = choice.get("message")
        content = _text(message.get("content") if isinstance(message, Mapping) else None)
        if not content.strip():
            raise RetryableProviderError(
                self.name, f"OpenRouter returned an empty completion (finish_reason={finish})"
            )
        model = reply.get("model")
        usage = reply.get("usage")
        generation_id = reply.get("id")
        return ChatResult(
            content=content,
            model=model if isinstance(model, str) and model else requested_model,
            usage=dict(usage) if isinstance(usage, Mapping) else {},
            generation_id=generation_id if isinstance(generation_id, str) else None,
            finish_reason=finish if isinstance(finish, str) else None,
        )

    def _body_error(self, body: Mapping[str, Any]) -> Exception:
        """An error inside HTTP 200 came after generation started: retryable unless its code is 4xx-final."""
        err = body.get("error")
        code = err.get("code") if isinstance(err, Mapping) else None
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool):
            code = None
        fault = fault_for_status(code) if code in _PERMANENT_BODY_CODES else Fault.SERVER
        fault = refine_content_fault(fault, body)
        detail = self._api.detail(err.get("message") if isinstance(err, Mapping) else None)
        return error_for(
            fault,
            provider=self.name,
            code=code,
            key_setting=self._api.key_setting,
            detail=detail,
            label="error code" if code is not None else "error in an HTTP 200 reply",
        )

    def list_models(self, *, request_id: str | None = None) -> list[ModelInfo]:
        reply = self._api.request("GET", "/models", headers=self._headers, request_id=request_id)
        data = reply.get("data") if isinstance(reply, Mapping) else None
        if not isinstance(data, list):
            raise RetryableProviderError(self.name, "OpenRouter's model list has no data array")
        models: list[ModelInfo] = []
        for item in data:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
                continue
            pricing = item.get("pricing") if isinstance(item.get("pricing"), Mapping) else {}
            name = item.get("name")
            description = item.get("description")
            models.append(
                ModelInfo(
                    id=item["id"],
                    name=name if isinstance(name, str) and name else item["id"],
                    context_length=_int_or_none(item.get("context_length")),
                    prompt_price=_price(pricing.get("prompt")),
                    completion_price=_price(pricing.get("completion")),
                    description=description if isinstance(description, str) else "",
                )
            )
        return models
