"""Fault injection: every kind on every endpoint family, consumption of `times`, `match` and the WSGI seam."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sim_helpers import chat_body, image_body, poll_until, suno_body

from simulator.app import make_app
from simulator.server import RunningSimulator
from simulator.state import Latency, SimState

AddFault = Callable[..., dict[str, Any]]


def _chat(client: httpx.Client, **kwargs: Any) -> httpx.Response:
    return client.post("/api/v1/chat/completions", json=chat_body(**kwargs))


def _generate(client: httpx.Client) -> str:
    return client.post("/api/v1/generate", json=suno_body()).json()["data"]["taskId"]


def _music(client: httpx.Client, task_id: str) -> dict:
    return client.get("/api/v1/generate/record-info", params={"taskId": task_id}).json()["data"]


def _image(client: httpx.Client, task_id: str) -> dict:
    return client.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()["data"]


def _create_image(client: httpx.Client) -> str:
    return client.post("/api/v1/jobs/createTask", json=image_body()).json()["data"]["taskId"]


def test_status_fault_with_retry_after_fires_once(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="chat", kind="status", status=429, retry_after=7)
    limited = _chat(client)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == 429
    assert limited.json()["error"]["metadata"]["error_type"] == "rate_limit_exceeded"
    assert _chat(client).status_code == 200
    assert client.get("/_sim/stats").json()["submissions"]["llm"] == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403, 408, 500, 502, 503, 504])
def test_status_fault_uses_each_providers_error_shape(
    client: httpx.Client, add_fault: AddFault, status: int
) -> None:
    add_fault(endpoint="chat", kind="status", status=status)
    add_fault(endpoint="suno_generate", kind="status", status=status)
    chat = _chat(client)
    assert chat.status_code == status and chat.json()["error"]["code"] == status
    suno = client.post("/api/v1/generate", json=suno_body())
    assert suno.status_code == status and suno.json()["code"] == status and suno.json()["data"] is None


def test_times_decrement_and_forever(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="models", kind="status", status=503, times=2)
    assert client.get("/api/v1/models").status_code == 503
    assert client.get("/_sim/stats").json()["faults"][0]["times"] == 1
    assert client.get("/api/v1/models").status_code == 503
    assert client.get("/api/v1/models").status_code == 200
    assert client.get("/_sim/faults").json()["faults"] == []
    add_fault(endpoint="models", kind="status", status=500, times=-1)
    assert [client.get("/api/v1/models").status_code for _ in range(4)] == [500] * 4
    assert client.delete("/_sim/faults").status_code == 200
    assert client.get("/api/v1/models").status_code == 200


def test_match_restricts_the_fault_to_matching_requests(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="chat", kind="status", status=500, match="anthropic/")
    assert _chat(client).status_code == 200
    assert _chat(client, model="anthropic/claude-3.5-sonnet").status_code == 500


def test_body_code_is_http_200_with_kie_code_and_no_task(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="suno_generate", kind="body_code", code=402)
    add_fault(endpoint="image_create", kind="body_code", code=455, msg="maintenance")
    suno = client.post("/api/v1/generate", json=suno_body())
    assert suno.status_code == 200 and suno.json()["code"] == 402 and suno.json()["data"] is None
    image = client.post("/api/v1/jobs/createTask", json=image_body())
    assert image.json() == {"code": 455, "msg": "maintenance", "data": None}
    assert client.get("/_sim/stats").json()["submissions"] == {"llm": 0, "music": 0, "image": 0}


def test_slow_fault_triggers_client_timeout(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="suno_poll", kind="slow", seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/v1/generate/record-info", params={"taskId": "x"}, timeout=0.3)


def test_drop_closes_the_connection_without_a_response(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="chat", kind="drop")
    with pytest.raises(httpx.TransportError):
        _chat(client)
    assert _chat(client).status_code == 200
    log = client.get("/_sim/requests").json()["requests"]
    assert log[0]["status"] == "dropped" and log[0]["fault"] == "drop"


def test_drop_after_processing_still_creates_the_paid_task(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="suno_generate", kind="drop", after_processing=True)
    with pytest.raises(httpx.TransportError):
        client.post("/api/v1/generate", json=suno_body())
    stats = client.get("/_sim/stats").json()
    assert stats["submissions"]["music"] == 1 and len(stats["tasks"]["music"]) == 1


def test_drop_through_wsgi_transport_is_an_httpx_error() -> None:
    state = SimState(Latency(llm=0, music=0, image=0))
    with httpx.Client(transport=httpx.WSGITransport(app=make_app(state)), base_url="http://sim") as client:
        client.post("/_sim/faults", json={"endpoint": "image_poll", "kind": "drop"})
        with pytest.raises(httpx.TransportError):
            client.get(
                "/api/v1/jobs/recordInfo", params={"taskId": "x"}, headers={"Authorization": "Bearer k"}
            )


def test_malformed_json_is_not_parseable(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="image_poll", kind="malformed_json")
    response = client.get("/api/v1/jobs/recordInfo", params={"taskId": "x"})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def _options(response: httpx.Response) -> Any:
    return json.loads(response.json()["choices"][0]["message"]["content"])


def _not_json(content: str) -> bool:
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    return True


def _fenced_options(content: str) -> bool:
    fenced = content.split("```json")[1].split("```")[0]
    return not content.startswith("{") and len(json.loads(fenced)["options"]) == 3


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("llm_not_json", _not_json),
        ("llm_prose_around_json", _fenced_options),
        ("llm_missing_fields", lambda c: all("lyrics" not in o for o in json.loads(c)["options"])),
        ("llm_zero_options", lambda c: json.loads(c) == {"options": []}),
        ("llm_wrong_types", lambda c: not isinstance(json.loads(c)["options"][0]["title"], str)),
        ("llm_empty", lambda c: c is None),
    ],
)
def test_llm_content_faults(client: httpx.Client, add_fault: AddFault, kind: str, check: Callable) -> None:
    add_fault(endpoint="chat", kind=kind)
    response = _chat(client)
    assert response.status_code == 200
    assert check(response.json()["choices"][0]["message"]["content"])
    assert len(_options(_chat(client))["options"]) == 3  # consumed: next reply is healthy


def test_llm_error_in_200(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="chat", kind="llm_error_in_200", code=502)
    response = _chat(client)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == 502 and "choices" not in response.json()


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [("task_fail", "GENERATE_AUDIO_FAILED", 501), ("task_sensitive", "SENSITIVE_WORD_ERROR", 400)],
)
def test_music_task_failures(
    client: httpx.Client, add_fault: AddFault, kind: str, status: str, error: int
) -> None:
    add_fault(endpoint="suno_generate", kind=kind)
    failing, healthy = _generate(client), _generate(client)
    final = poll_until(
        lambda: _music(client, failing),
        lambda r: r["status"] not in ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"),
    )[-1]
    assert final["status"] == status and final["errorCode"] == error and final["errorMessage"]
    assert final["response"]["sunoData"] == []
    assert poll_until(lambda: _music(client, healthy), lambda r: r["status"] == "SUCCESS")


def test_music_never_finishes_and_empty_result(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="suno_generate", kind="task_never_finishes")
    add_fault(endpoint="suno_generate", kind="task_empty_result")
    stuck, empty = _generate(client), _generate(client)
    client.post("/_sim/advance", json={"seconds": 60})
    assert _music(client, stuck)["status"] == "PENDING"
    record = _music(client, empty)
    assert record["status"] == "SUCCESS" and record["response"]["sunoData"] == []


def test_task_fault_on_poll_attaches_to_the_matched_task(client: httpx.Client, add_fault: AddFault) -> None:
    first, second = _generate(client), _generate(client)
    add_fault(endpoint="suno_poll", kind="task_fail", match=second, message="boom")
    client.post("/_sim/advance", json={"seconds": 1})
    assert _music(client, first)["status"] == "SUCCESS"
    failed = _music(client, second)
    assert failed["status"] == "GENERATE_AUDIO_FAILED" and failed["errorMessage"] == "boom"


def test_unknown_status_for_n_polls_then_real_status(client: httpx.Client, add_fault: AddFault) -> None:
    task_id = _generate(client)
    add_fault(endpoint="suno_poll", kind="task_unknown_status", times=2)
    client.post("/_sim/advance", json={"seconds": 1})
    assert [_music(client, task_id)["status"] for _ in range(3)] == ["GENERATING", "GENERATING", "SUCCESS"]
    add_fault(endpoint="suno_generate", kind="task_unknown_status", value="FAILED", polls=1)
    other = _generate(client)
    assert [_music(client, other)["status"] for _ in range(2)] == ["FAILED", "PENDING"]


def test_image_task_faults(client: httpx.Client, add_fault: AddFault) -> None:
    add_fault(endpoint="image_create", kind="task_fail")
    add_fault(endpoint="image_create", kind="task_sensitive")
    add_fault(endpoint="image_create", kind="task_never_finishes")
    add_fault(endpoint="image_create", kind="task_empty_result")
    failed, sensitive, stuck, empty = (_create_image(client) for _ in range(4))
    client.post("/_sim/advance", json={"seconds": 60})
    for task_id in (failed, sensitive):
        record = _image(client, task_id)
        assert (
            record["state"] == "fail"
            and record["failCode"]
            and record["failMsg"]
            and record["resultJson"] == ""
        )
    assert "sensitive" in _image(client, sensitive)["failMsg"]
    assert _image(client, stuck)["state"] == "generating"
    assert json.loads(_image(client, empty)["resultJson"]) == {"resultUrls": []}
    add_fault(endpoint="image_poll", kind="task_unknown_status", value="processing")
    assert _image(client, empty)["state"] == "processing"
    assert _image(client, empty)["state"] == "success"


def _song_urls(client: httpx.Client) -> dict:
    task_id = _generate(client)
    client.post("/_sim/advance", json={"seconds": 1})
    return _music(client, task_id)["response"]["sunoData"][0]


def test_file_faults(client: httpx.Client, add_fault: AddFault) -> None:
    track = _song_urls(client)
    add_fault(endpoint="audio_file", kind="status", status=404)
    assert httpx.get(track["audioUrl"]).status_code == 404
    add_fault(endpoint="audio_file", kind="oversized", size_mb=2)
    big = httpx.get(track["audioUrl"])
    assert int(big.headers["content-length"]) == len(big.content) == 2 * 1024 * 1024
    assert big.content[:4] == b"RIFF"
    add_fault(endpoint="image_file", kind="wrong_content_type")
    html = httpx.get(track["imageUrl"])
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    add_fault(endpoint="audio_file", kind="drop")
    with pytest.raises(httpx.TransportError):
        httpx.get(track["audioUrl"])
    assert httpx.get(track["audioUrl"]).content[:4] == b"RIFF"


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "nowhere", "kind": "status", "status": 500},
        {"endpoint": "chat", "kind": "status"},
        {"endpoint": "chat", "kind": "slow"},
        {"endpoint": "chat", "kind": "status", "status": 500, "times": 0},
        {"endpoint": "models", "kind": "body_code", "code": 402},
        {"endpoint": "audio_file", "kind": "llm_empty"},
    ],
)
def test_invalid_faults_are_rejected(client: httpx.Client, fault: dict) -> None:
    response = client.post("/_sim/faults", json={"faults": [fault]})
    assert response.status_code == 400 and response.json()["error"]


def test_simulator_object_exposes_url_port_and_state(sim: RunningSimulator) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}"
    assert httpx.get(f"{sim.url}/_sim/health").json() == {"ok": True}
    assert sim.state.submissions == {"llm": 0, "music": 0, "image": 0}
