"""/metrics after real jobs: an in-process SimpleWorker, and a forking `python -m worker` (multiprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.jobs import submit_job
from core.metrics import serve
from core.models import TERMINAL_STATUSES, Job
from core.stack import ROOT
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def _failing_job(deps, sim, actor):
    sim_control(
        sim, "/_sim/faults", {"faults": [{"endpoint": "image_create", "kind": "status", "status": 400}]}
    )
    return submit_job(deps, actor, "this one fails at the cover")


def test_metrics_endpoint_counts_jobs_steps_and_provider_calls_in_process(deps, sim):
    alice = make_user(deps)
    server, _ = serve(deps, "127.0.0.1", 0, None)
    port = server.server_port
    try:
        before = scrape(port)
        ok = [submit_job(deps, alice, f"in-process song {i}") for i in range(2)]
        run_until_done(deps, [j.id for j in ok])
        bad = _failing_job(deps, sim, alice)
        assert run_until_done(deps, [bad.id]) == {str(bad.id): "failed"}
        after = scrape(port)
    finally:
        server.shutdown()

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("songsmith_jobs_finished_total", outcome="completed") == 2
    assert delta("songsmith_jobs_finished_total", outcome="failed", failed_step="render_cover") == 1
    assert delta("songsmith_job_duration_seconds_count", outcome="completed") == 2
    assert delta("songsmith_step_duration_seconds_count", step="store", outcome="completed") == 2
    assert delta("songsmith_step_duration_seconds_count", step="write_options", outcome="advanced") == 3
    assert delta("songsmith_provider_request_duration_seconds_count", provider="Suno") >= 4
    assert (
        delta("songsmith_provider_request_duration_seconds_count", provider="NanoBanana", status="400") == 1
    )
    assert ("songsmith_queue_depth", (("queue", "interactive"), ("state", "queued"))) in after
    assert after[("songsmith_remote_tasks_in_flight", (("provider", "suno"),))] == 0
    assert after[("songsmith_live_gauges_up", ())] == 1


def _env(settings, metrics_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    for name, value in settings.model_dump().items():
        if value is not None:
            raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            env[name.upper()] = str(raw)
    env["METRICS_DIR"] = str(metrics_dir)
    return env


@pytest.mark.parametrize("worker_class", ["fork", "inline"])
def test_work_done_by_either_worker_class_is_counted_in_multiprocess_mode(
    deps, settings, sim, tmp_path, worker_class
):
    alice = make_user(deps)
    metrics_dir = tmp_path / "metrics"
    sim_control(sim, "/_sim/config", {"latency": {"llm": 0, "music": 0, "image": 0}})  # fewer polls
    jobs = [submit_job(deps, alice, f"forked song {i}") for i in range(2)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "worker", "--name", f"metrics-test-{os.getpid()}"],
        cwd=ROOT,
        env={**_env(settings, metrics_dir), "WORKER_CLASS": worker_class},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with deps.sessionmaker() as s:
                states = [s.get(Job, j.id).status for j in jobs]
            if all(st in TERMINAL_STATUSES for st in states):
                break
            assert worker.poll() is None, "the worker died"
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(20)
    assert states == ["completed"] * 2
    if worker_class == "fork":
        assert len(list(metrics_dir.glob("*.db"))) >= 2, "one file per work-horse process"

    server, _ = serve(deps, "127.0.0.1", 0, metrics_dir)
    try:
        samples = scrape(server.server_port)
    finally:
        server.shutdown()
    assert total(samples, "songsmith_jobs_finished_total", outcome="completed") == 2
    assert total(samples, "songsmith_job_duration_seconds_count") == 2
    for step in ("write_options", "choose_option", "render_audio", "write_image_prompt", "render_cover"):
        assert total(samples, "songsmith_step_duration_seconds_count", step=step, outcome="advanced") == 2
    assert total(samples, "songsmith_provider_request_duration_seconds_count", provider="OpenRouter") >= 4
    assert total(samples, "songsmith_step_runs_total", step="render_audio", outcome="waiting") >= 2
