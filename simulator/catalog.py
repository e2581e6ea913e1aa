"""The OpenRouter model catalogue the simulator serves (pricing as strings, per contract 1.6)."""

from __future__ import annotations

from typing import Any

_TEXT_PARAMS = ["max_tokens", "temperature", "top_p", "stop", "seed", "response_format", "structured_outputs"]

# id, name, context_length, prompt $/token, completion $/token, max_completion_tokens, created, tokenizer
_MODELS: tuple[tuple[str, str, int, str, str, int, int, str], ...] = (
    (
        "openai/gpt-4o-mini",
        "OpenAI: GPT-4o-mini",
        128000,
        "0.00000015",
        "0.0000006",
        16384,
        1721260800,
        "GPT",
    ),
    ("openai/gpt-4o", "OpenAI: GPT-4o", 128000, "0.0000025", "0.00001", 16384, 1715558400, "GPT"),
    (
        "openai/gpt-4.1-mini",
        "OpenAI: GPT-4.1 Mini",
        1047576,
        "0.0000004",
        "0.0000016",
        32768,
        1744588800,
        "GPT",
    ),
    (
        "anthropic/claude-3.5-sonnet",
        "Anthropic: Claude 3.5 Sonnet",
        200000,
        "0.000003",
        "0.000015",
        8192,
        1729555200,
        "Claude",
    ),
    (
        "anthropic/claude-3.5-haiku",
        "Anthropic: Claude 3.5 Haiku",
        200000,
        "0.0000008",
        "0.000004",
        8192,
        1730678400,
        "Claude",
    ),
    (
        "google/gemini-2.5-flash",
        "Google: Gemini 2.5 Flash",
        1048576,
        "0.0000003",
        "0.0000025",
        65535,
        1750172400,
        "Gemini",
    ),
    (
        "google/gemini-2.5-pro",
        "Google: Gemini 2.5 Pro",
        1048576,
        "0.00000125",
        "0.00001",
        65536,
        1750169400,
        "Gemini",
    ),
    (
        "google/gemini-2.0-flash-exp:free",
        "Google: Gemini 2.0 Flash Experimental (free)",
        1048576,
        "0",
        "0",
        8192,
        1733937600,
        "Gemini",
    ),
    (
        "meta-llama/llama-3.1-70b-instruct",
        "Meta: Llama 3.1 70B Instruct",
        131072,
        "0.0000001",
        "0.00000028",
        16384,
        1721692800,
        "Llama3",
    ),
    (
        "meta-llama/llama-3.1-8b-instruct:free",
        "Meta: Llama 3.1 8B Instruct (free)",
        131072,
        "0",
        "0",
        4096,
        1721692800,
        "Llama3",
    ),
    (
        "meta-llama/llama-3.3-70b-instruct:free",
        "Meta: Llama 3.3 70B Instruct (free)",
        131072,
        "0",
        "0",
        8192,
        1733506137,
        "Llama3",
    ),
    ("mistralai/mistral-large", "Mistral Large", 128000, "0.000002", "0.000006", 8192, 1708905600, "Mistral"),
    (
        "mistralai/mistral-7b-instruct:free",
        "Mistral: Mistral 7B Instruct (free)",
        32768,
        "0",
        "0",
        16384,
        1716768000,
        "Mistral",
    ),
    (
        "qwen/qwen-2.5-72b-instruct",
        "Qwen2.5 72B Instruct",
        32768,
        "0.00000012",
        "0.00000039",
        16384,
        1726704000,
        "Qwen",
    ),
    (
        "deepseek/deepseek-chat",
        "DeepSeek: DeepSeek V3",
        163840,
        "0.0000003",
        "0.00000085",
        163840,
        1735241584,
        "DeepSeek",
    ),
    (
        "google/gemini-2.5-flash-image",
        "Google: Gemini 2.5 Flash Image (Nano Banana)",
        32768,
        "0.0000003",
        "0.0000025",
        8192,
        1759276800,
        "Gemini",
    ),
)


def _model(row: tuple[str, str, int, str, str, int, int, str]) -> dict[str, Any]:
    model_id, name, context, prompt, completion, max_out, created, tokenizer = row
    image_out = model_id.endswith("-image")
    free = model_id.endswith(":free")
    return {
        "id": model_id,
        "canonical_slug": model_id.removesuffix(":free"),
        "name": name,
        "created": created,
        "description": f"{name}, served by the Songsmith provider simulator.",
        "context_length": context,
        "architecture": {
            "modality": "text+image->text+image" if image_out else "text+image->text",
            "input_modalities": ["text", "image"],
            "output_modalities": ["image", "text"] if image_out else ["text"],
            "tokenizer": tokenizer,
            "instruct_type": None,
        },
        "pricing": {
            "prompt": prompt,
            "completion": completion,
            "request": "0",
            "image": "0.00003868" if image_out else "0",
            "web_search": "0",
            "internal_reasoning": "0",
            "input_cache_read": "0",
            "input_cache_write": "0",
        },
        "top_provider": {
            "context_length": context,
            "max_completion_tokens": max_out,
            "is_moderated": not free,
        },
        "per_request_limits": None,
        "supported_parameters": _TEXT_PARAMS if not free else _TEXT_PARAMS[:5],
        "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
        "expiration_date": None,
    }


def list_models(output_modalities: str = "text") -> list[dict[str, Any]]:
    wanted = {m.strip() for m in output_modalities.split(",") if m.strip()} or {"text"}
    models = [_model(row) for row in _MODELS]
    if "all" in wanted:
        return models
    return [m for m in models if wanted & set(m["architecture"]["output_modalities"])]


def find_model(model_id: str) -> dict[str, Any] | None:
    return next(
        (m for m in list_models("all") if m["id"] == model_id or m["canonical_slug"] == model_id), None
    )


def price(model_id: str) -> tuple[float, float]:
    model = find_model(model_id)
    if model is None:
        return 0.000001, 0.000002
    return float(model["pricing"]["prompt"]), float(model["pricing"]["completion"])
