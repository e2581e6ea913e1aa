"""kie.ai contract: Suno generate/record-info and Market createTask/recordInfo lifecycles and validation."""

from __future__ import annotations

import json

import httpx
import pytest
from sim_helpers import image_body, poll_until, suno_body

from simulator.server import RunningSimulator

MUSIC_ORDER = ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"]
IMAGE_ORDER = ["waiting", "queuing", "generating", "success"]


def _generate(client: httpx.Client, **overrides: object) -> str:
    body = client.post("/api/v1/generate", json=suno_body(**overrides)).json()
    assert body["code"] == 200 and body["msg"] == "success", body
    return body["data"]["taskId"]


def _music(client: httpx.Client, task_id: str) -> dict:
    body = client.get("/api/v1/generate/record-info", params={"taskId": task_id}).json()
    assert body["code"] == 200, body
    return body["data"]


def test_suno_task_moves_through_all_stages_to_success(client: httpx.Client, sim: RunningSimulator) -> None:
    task_id = _generate(client)
    seen = poll_until(lambda: _music(client, task_id), lambda r: r["status"] == "SUCCESS")
    statuses = list(dict.fromkeys(r["status"] for r in seen))
    assert statuses[0] == "PENDING" and statuses[-1] == "SUCCESS"
    assert statuses == [s for s in MUSIC_ORDER if s in statuses]
    final = seen[-1]
    assert final["taskId"] == task_id and final["errorCode"] is None and final["type"] == "GENERATE"
    assert json.loads(final["param"])["title"] == "Midnight Rain"
    tracks = final["response"]["sunoData"]
    assert len(tracks) == 2
    for n, track in enumerate(tracks, start=1):
        assert track["audioUrl"] == f"{sim.url}/files/audio/{task_id}-{n}.wav"
        assert track["imageUrl"].startswith(f"{sim.url}/files/image/")
        assert track["title"] == "Midnight Rain" and track["tags"] == "jazz, ballad, piano, slow"
        assert 4 <= track["duration"] <= 6 and track["modelName"].startswith("chirp")


def test_first_success_exposes_only_a_stream_url(client: httpx.Client) -> None:
    client.post("/_sim/config", json={"latency": {"music": 10}})
    task_id = _generate(client)
    client.post("/_sim/advance", json={"seconds": 7})
    record = _music(client, task_id)
    assert record["status"] == "FIRST_SUCCESS"
    assert record["response"]["sunoData"][0]["audioUrl"] == ""
    assert record["response"]["sunoData"][0]["streamAudioUrl"]


@pytest.mark.parametrize(
    ("overrides", "code", "needle"),
    [
        ({"callBackUrl": None}, 422, "callBackUrl"),
        ({"title": None}, 422, "title"),
        ({"customMode": None}, 422, "customMode"),
        ({"model": "V99"}, 422, "model"),
        ({"title": "x" * 81}, 400, "title"),
        ({"style": "x" * 201}, 400, "style"),
        ({"prompt": "x" * 3001}, 400, "prompt"),
    ],
)
def test_suno_validation_errors_use_body_codes(
    client: httpx.Client, sim: RunningSimulator, overrides: dict, code: int, needle: str
) -> None:
    response = client.post("/api/v1/generate", json=suno_body(**overrides))
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == code and needle in body["msg"] and body["data"] is None
    assert sim.state.submissions["music"] == 0


def test_suno_poll_errors(client: httpx.Client) -> None:
    assert client.get("/api/v1/generate/record-info", params={"taskId": "nope"}).json()["code"] == 404
    assert client.get("/api/v1/generate/record-info").json()["code"] == 400


def test_suno_without_key_is_401(sim: RunningSimulator) -> None:
    response = httpx.post(f"{sim.url}/api/v1/generate", json=suno_body())
    assert response.status_code == 401 and response.json()["code"] == 401


def test_image_task_reaches_success_with_result_json_string(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    created = client.post("/api/v1/jobs/createTask", json=image_body()).json()
    assert created["code"] == 200
    task_id = created["data"]["taskId"]

    def fetch() -> dict:
        return client.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()["data"]

    seen = poll_until(fetch, lambda r: r["state"] == "success")
    states = list(dict.fromkeys(r["state"] for r in seen))
    assert states[0] == "waiting" and states == [s for s in IMAGE_ORDER if s in states]
    final = seen[-1]
    assert json.loads(final["resultJson"]) == {"resultUrls": [f"{sim.url}/files/image/{task_id}.png"]}
    assert final["failCode"] == "" and final["failMsg"] == ""
    assert final["completeTime"] >= final["createTime"] > 1_600_000_000_000
    assert json.loads(final["param"])["model"] == "google/nano-banana"


def test_image_errors(client: httpx.Client) -> None:
    unknown = client.get("/api/v1/jobs/recordInfo", params={"taskId": "task_x"}).json()
    assert unknown["code"] == 422 and unknown["msg"] == "recordInfo is null"
    assert client.get("/api/v1/jobs/recordInfo").json()["code"] == 400
    assert (
        client.post("/api/v1/jobs/createTask", json={"model": "google/nano-banana", "input": {}}).json()[
            "code"
        ]
        == 422
    )


def test_submissions_count_accepted_paid_calls(client: httpx.Client) -> None:
    _generate(client)
    _generate(client)
    client.post("/api/v1/generate", json=suno_body(title=None))
    client.post("/api/v1/jobs/createTask", json=image_body())
    stats = client.get("/_sim/stats").json()
    assert stats["submissions"] == {"llm": 0, "music": 2, "image": 1}
    assert len(stats["tasks"]["music"]) == 2 and len(stats["tasks"]["image"]) == 1


def test_reset_clears_tasks_counters_faults_log_and_latency(client: httpx.Client) -> None:
    task_id = _generate(client)
    client.post("/_sim/config", json={"latency": {"music": 99, "llm": 1}})
    client.post("/_sim/faults", json={"faults": [{"endpoint": "chat", "kind": "status", "status": 500}]})
    assert client.post("/_sim/reset").json() == {"ok": True}
    stats = client.get("/_sim/stats").json()
    assert stats["submissions"] == {"llm": 0, "music": 0, "image": 0}
    assert stats["requests"] == [] and stats["faults"] == [] and stats["tasks"] == {"music": {}, "image": {}}
    assert stats["latency"] == {"llm": 0.0, "music": 0.3, "image": 0.3}
    assert client.get("/api/v1/generate/record-info", params={"taskId": task_id}).json()["code"] == 404


def test_control_api_health_config_and_validation(client: httpx.Client) -> None:
    assert client.get("/_sim/health").json() == {"ok": True}
    config = client.post("/_sim/config", json={"latency": {"image": 1.5}}).json()
    assert config["latency"]["image"] == 1.5
    assert client.post("/_sim/config", json={"latency": {"image": -1}}).status_code == 400
    assert (
        client.post("/_sim/faults", json={"faults": [{"endpoint": "chat", "kind": "task_fail"}]}).status_code
        == 400
    )
