"""Artifacts: real WAV audio (tempo from style, pitch from title) and real PNG/JPEG covers."""

from __future__ import annotations

import array
import io
import json
import wave

import httpx
import pytest
from PIL import Image
from sim_helpers import image_body, poll_until, suno_body

from simulator.audio import SAMPLE_RATE, choose_tempo, render_wav


def _finished_tracks(client: httpx.Client, **overrides: object) -> list[dict]:
    task_id = client.post("/api/v1/generate", json=suno_body(**overrides)).json()["data"]["taskId"]
    seen = poll_until(
        lambda: client.get("/api/v1/generate/record-info", params={"taskId": task_id}).json()["data"],
        lambda r: r["status"] == "SUCCESS",
    )
    return seen[-1]["response"]["sunoData"]


def _measured_bpm(data: bytes) -> float:
    """Beat period from the autocorrelation of the 10 ms peak envelope (shortest strong lag wins)."""
    with wave.open(io.BytesIO(data)) as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
        window = wav.getframerate() // 100
    envelope = [max(map(abs, samples[i : i + window])) for i in range(0, len(samples) - window, window)]
    mean = sum(envelope) / len(envelope)
    d = [x - mean for x in envelope]
    ac = {
        lag: sum(a * b for a, b in zip(d, d[lag:], strict=False)) / (len(d) - lag) for lag in range(20, 101)
    }
    top = max(ac.values())
    lag = min(
        lag for lag in range(21, 100) if ac[lag] >= 0.7 * top and ac[lag] >= max(ac[lag - 1], ac[lag + 1])
    )
    return 6000 / lag


@pytest.mark.parametrize(
    ("style", "bpm"),
    [
        ("jazz, ballad, piano, slow", 70),
        ("ambient, pads", 70),
        ("punk, fast, guitars", 150),
        ("drum and bass, energetic", 150),
        ("edm", 150),
        ("synthwave, 128 bpm, slow", 128),
        ("pop, upbeat", 110),
        ("slow intro then fast punk", 70),
    ],
)
def test_tempo_follows_the_style(style: str, bpm: int) -> None:
    assert choose_tempo(style) == bpm


def test_downloaded_wav_is_playable_16bit_mono(client: httpx.Client) -> None:
    tracks = _finished_tracks(client)
    response = httpx.get(tracks[0]["audioUrl"])
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
        assert wav.getnframes() > 0
        assert 4.0 <= wav.getnframes() / SAMPLE_RATE <= 6.0
        assert abs(wav.getnframes() / SAMPLE_RATE - tracks[0]["duration"]) < 0.05
    second = httpx.get(tracks[1]["audioUrl"]).content
    assert second != response.content  # two different takes
    assert httpx.get(tracks[0]["audioUrl"]).content == response.content  # cached and deterministic


@pytest.mark.parametrize("title", ["Midnight Rain", "Sunny Day"])
def test_measured_tempo_of_the_wav_matches_the_style(title: str) -> None:
    assert _measured_bpm(render_wav("slow jazz ballad", title)) == pytest.approx(70, rel=0.05)
    assert _measured_bpm(render_wav("pop", title)) == pytest.approx(110, rel=0.05)
    assert _measured_bpm(render_wav("fast punk", title)) == pytest.approx(150, rel=0.05)


def test_title_changes_the_melody() -> None:
    assert render_wav("pop", "Midnight Rain") != render_wav("pop", "Sunny Day")


def test_image_task_png_is_1024_square(client: httpx.Client) -> None:
    task_id = client.post("/api/v1/jobs/createTask", json=image_body()).json()["data"]["taskId"]
    final = poll_until(
        lambda: client.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()["data"],
        lambda r: r["state"] == "success",
    )[-1]
    url = json.loads(final["resultJson"])["resultUrls"][0]
    response = httpx.get(url)
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG" and image.size == (1024, 1024)
        colours = image.resize((16, 16)).getcolors(maxcolors=256)
        assert colours is None or len(colours) > 10  # not a flat colour


def test_suno_cover_is_a_jpeg(client: httpx.Client) -> None:
    response = httpx.get(_finished_tracks(client)[0]["imageUrl"])
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG" and image.size == (1024, 1024)


def test_unknown_files_are_404(client: httpx.Client) -> None:
    assert client.get("/files/audio/deadbeef-1.wav").status_code == 404
    assert client.get("/files/image/task_google_nope.png").status_code == 404


def test_render_variety_reuses_a_bounded_set_of_real_files_across_songs(sim):
    """Benchmarks cap the simulator's rendering so it does not eat the cores being measured."""
    headers = {"Authorization": "Bearer test-key"}
    with httpx.Client(base_url=sim.url, headers=headers, timeout=10) as client:

        def audio(title: str) -> bytes:
            return httpx.get(_finished_tracks(client, title=title)[0]["audioUrl"]).content

        own = [audio(f"Song {i}") for i in range(3)]
        sim.state.render_variety = 1
        shared = [audio(f"Other {i}") for i in range(3)]
    assert len(set(own)) == 3, "by default every song is rendered for itself"
    assert len(set(shared)) == 1 and shared[0] not in own
    with wave.open(io.BytesIO(shared[0])) as wav:
        assert wav.getnframes() > SAMPLE_RATE, "still a real, playable WAV"
