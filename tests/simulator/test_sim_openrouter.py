"""OpenRouter contract: chat completions (options, image prompt, text), models, auth, request log."""

from __future__ import annotations

import json

import httpx
from sim_helpers import CONCEPT, chat_body

from simulator.server import RunningSimulator


def _content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_song_options_are_three_valid_options_from_the_concept(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat/completions", json=chat_body())
    body = response.json()
    assert body["id"].startswith("gen-")
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert {"prompt_tokens", "completion_tokens", "total_tokens", "cost"} <= set(body["usage"])
    options = json.loads(_content(response))["options"]
    assert len(options) == 3
    assert len({o["title"] for o in options}) == 3
    for option in options:
        assert set(option) == {"title", "style", "lyrics"}
        assert all(isinstance(v, str) and v for v in option.values())
        assert len(option["title"]) <= 80 and len(option["style"]) <= 200 and len(option["lyrics"]) <= 3000
        assert "[Verse]" in option["lyrics"] and "[Chorus]" in option["lyrics"]
        assert {"jazz", "ballad", "piano", "slow"} <= {t.strip() for t in option["style"].split(",")}
    text = " ".join(o["title"] + o["lyrics"] for o in options).lower()
    assert "rain" in text and "paris" in text


def test_song_options_are_deterministic_per_concept(client: httpx.Client) -> None:
    first = _content(client.post("/api/v1/chat/completions", json=chat_body()))
    again = _content(client.post("/api/v1/chat/completions", json=chat_body()))
    other = _content(
        client.post("/api/v1/chat/completions", json=chat_body("Fast punk song about skateboards"))
    )
    assert first == again
    assert first != other
    assert "punk" in json.loads(other)["options"][0]["style"]


def test_json_object_mode_also_returns_options(client: httpx.Client) -> None:
    body = chat_body(CONCEPT + "\nReturn JSON with 3 options.", response_format={"type": "json_object"})
    assert len(json.loads(_content(client.post("/api/v1/chat/completions", json=body)))["options"]) == 3


def test_image_prompt_is_built_from_title_style_and_lyrics(client: httpx.Client) -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "image_prompt", "strict": True, "schema": {}}}
    text = "Title: Midnight Rain\nStyle: jazz, ballad, piano\nLyrics:\n[Verse]\nLanterns over the river"
    prompt = json.loads(_content(client.post("/api/v1/chat/completions", json=chat_body(text, rf))))["prompt"]
    assert "Midnight Rain" in prompt and "jazz" in prompt and "lanterns" in prompt.lower()


def test_plain_request_gets_a_short_text_reply(client: httpx.Client) -> None:
    content = _content(client.post("/api/v1/chat/completions", json=chat_body("Hello there", None)))
    assert content and not content.startswith("{") and len(content) < 300


def test_image_modality_returns_a_png_data_url(client: httpx.Client) -> None:
    body = chat_body("A neon city cover", None, modalities=["image", "text"])
    body["model"] = "google/gemini-2.5-flash-image"
    message = client.post("/api/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert message["images"][0]["image_url"]["url"].startswith("data:image/png;base64,")


def test_bad_requests_get_openrouter_errors(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert client.post("/api/v1/chat/completions", content=b"{not json").status_code == 400


def test_chat_without_key_is_401_in_openrouter_shape(sim: RunningSimulator) -> None:
    response = httpx.post(f"{sim.url}/api/v1/chat/completions", json=chat_body())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert sim.state.submissions["llm"] == 0


def test_models_list_is_public_with_string_pricing(sim: RunningSimulator) -> None:
    models = httpx.get(f"{sim.url}/api/v1/models").json()["data"]
    assert len(models) >= 12
    ids = {m["id"] for m in models}
    assert {"openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "google/gemini-2.5-flash"} <= ids
    assert any(i.endswith(":free") for i in ids)
    for model in models:
        assert {
            "id",
            "canonical_slug",
            "name",
            "created",
            "description",
            "context_length",
            "architecture",
        } <= set(model)
        assert {"top_provider", "per_request_limits", "supported_parameters", "default_parameters"} <= set(
            model
        )
        assert "expiration_date" in model
        assert isinstance(model["context_length"], int)
        assert all(isinstance(v, str) for v in model["pricing"].values())
        assert set(model["pricing"]) >= {"prompt", "completion", "request", "image"}
    one = httpx.get(f"{sim.url}/api/v1/model/openai/gpt-4o").json()["data"]
    assert one["id"] == "openai/gpt-4o"
    assert httpx.get(f"{sim.url}/api/v1/model/nobody/nothing").status_code == 404


def test_requests_are_logged_with_request_id_and_model(client: httpx.Client) -> None:
    client.post("/api/v1/chat/completions", json=chat_body(model="anthropic/claude-3.5-sonnet"))
    stats = client.get("/_sim/stats").json()
    assert stats["models_requested"] == ["anthropic/claude-3.5-sonnet"]
    assert stats["submissions"]["llm"] == 1
    entry = client.get("/_sim/requests", params={"limit": 1}).json()["requests"][0]
    assert entry["path"] == "/api/v1/chat/completions"
    assert entry["request_id"] == "req-test"
    assert entry["model"] == "anthropic/claude-3.5-sonnet"
    assert entry["status"] == 200 and entry["duration_ms"] >= 0


def test_streaming_returns_sse_chunks(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat/completions", json=chat_body(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert json.loads(json.loads(data[0])["choices"][0]["delta"]["content"])["options"]
