"""`make run` (python -m core.cli run): the whole product stops on a signal, even a repeated one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core.stack import ROOT, free_port
from tests.conftest import settings_env

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False


def test_a_second_signal_during_shutdown_still_stops_every_process(settings, tmp_path):
    sim = f"http://127.0.0.1:{(sim_port := free_port())}"
    env = settings_env(
        settings,
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
        ARTIFACT_DIR=str(tmp_path / "artifacts"),
        METRICS_DIR=str(tmp_path / "metrics"),
        METRICS_PORT=str(free_port()),
        SIMULATOR_PORT=str(sim_port),
        OPENROUTER_BASE_URL=f"{sim}/api/v1",
        SUNO_BASE_URL=sim,
        NANOBANANA_BASE_URL=sim,
        DOWNLOAD_ALLOWED_HOSTS=f"127.0.0.1:{sim_port}",
        LOG_LEVEL="WARNING",
    )
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "run", "--port", str(free_port()), "--no-browser"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "Songsmith is running" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the product did not start"
            time.sleep(0.3)
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        children = [int(p) for p in out.split()]
        assert len(children) >= 4, "simulator, worker, cron, metrics and app run as children"
        # What `make run` + Ctrl-C does: make forwards SIGTERM, then an impatient second Ctrl-C.
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(90) == 0, log.read_text(errors="replace")[-3000:]
        assert "Traceback" not in log.read_text(errors="replace")
        left = [pid for pid in children if _alive(pid)]
        assert left == [], f"still running after the stop: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
