"""`python -m simulator`: starts on the given port, logs one JSON line per request, exits on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx


def test_cli_serves_logs_json_and_stops_on_sigterm() -> None:
    env = {**os.environ, "SIM_MUSIC_LATENCY": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0", "--llm-latency", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        started = json.loads(proc.stderr.readline())
        assert started["event"] == "listening" and started["latency"]["music_latency"] == 0.5
        response = httpx.get(f"{started['url']}/api/v1/models", headers={"X-Request-ID": "cli-1"})
        assert response.status_code == 200
        line = json.loads(proc.stderr.readline())
        assert line["method"] == "GET" and line["path"] == "/api/v1/models"
        assert line["status"] == 200 and line["request_id"] == "cli-1" and line["duration_ms"] >= 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
