"""Starts and stops the whole product as child processes: `make run` and the browser tests share it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from redis import Redis
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_busy(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def redis_answers(url: str) -> bool:
    try:
        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        ok = bool(client.ping())
        client.close()
        return ok
    except (RedisError, OSError, ValueError):
        return False


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Stack:
    """A set of child processes started in order and stopped in reverse, even on failure."""

    env: dict[str, str]
    log_dir: Path | None = None
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**self.env, **(extra_env or {})}
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def stop(self, timeout: float = 10.0) -> None:
        """Stop in reverse start order, each before the next, so Redis outlives the worker using it."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()

    def failed(self) -> str | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        return None


def ensure_redis(stack: Stack, url: str) -> None:
    """Start a throwaway redis-server for a local URL when none answers; else say what to install."""
    if redis_answers(url):
        return
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"Redis does not answer at {url}. Start it, or set REDIS_URL to one that does.")
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(
            f"Redis does not answer at {url} and redis-server is not installed. "
            "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)."
        )
    port = str(parsed.port or 6379)
    stack.start("redis", [server, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"redis-server did not come up on port {port}")
        time.sleep(0.1)


def start_product(
    stack: Stack,
    *,
    sim_port: int | None,
    app_port: int,
    sim_host: str = "127.0.0.1",
    open_browser: bool = False,
) -> str:
    """Simulator (if used), one worker with the scheduler, RQ cron running the reconciler, and Streamlit."""
    if sim_port is not None:
        sim = stack.start("simulator", [PY, "-m", "simulator", "--host", sim_host, "--port", str(sim_port)])
        wait_http(f"http://{sim_host}:{sim_port}/_sim/health", proc=sim)
    from core.config import load_settings
    from core.metrics import MULTIPROC_ENV, wipe

    metrics_dir = str(load_settings().metrics_dir.resolve())
    wipe(metrics_dir)  # a fresh product start: counters restart with it
    stack.env.setdefault(MULTIPROC_ENV, metrics_dir)  # the app's rate-limit counts are scraped too
    stack.start("metrics", [PY, "-m", "core.metrics_server"])
    stack.start("worker", [PY, "-m", "worker"])
    stack.start("reconciler", [PY, "-m", "worker.cron"])
    app = stack.start(
        "app",
        [
            PY,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(app_port),
            "--server.address",
            "127.0.0.1",
            # Always headless: a non-headless first run asks for an e-mail on stdin and dies without a
            # terminal. The browser is opened from here instead, once the app answers.
            "--server.headless",
            "true",
        ],
    )
    url = f"http://127.0.0.1:{app_port}"
    wait_http(f"{url}/_stcore/health", proc=app, timeout=90)
    if open_browser:
        webbrowser.open(url.replace("127.0.0.1", "localhost"))
    return url


def simulator_address(settings: Any) -> tuple[str, int] | None:
    """Where to start the simulator: only when some provider base URL points at SIMULATOR_HOST:PORT."""
    want = (settings.simulator_host, settings.simulator_port)
    for url in (settings.openrouter_base_url, settings.suno_base_url, settings.nanobanana_base_url):
        parsed = urlparse(url)
        host = "127.0.0.1" if parsed.hostname == "localhost" else parsed.hostname
        if (host, parsed.port) == want:
            return want
    return None


def _stop_on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_product(deps: Any, *, app_port: int, open_browser: bool, say: Any) -> int:
    """`make run`: check ports, migrate, first admin, Redis if needed, then every process until a signal.

    SIGTERM and SIGHUP stop everything like Ctrl-C does: the children run in their own sessions, so
    nobody else would stop them.
    """
    settings = deps.settings
    sim = simulator_address(settings)
    wanted = {"the app": app_port, "the metrics endpoint": settings.metrics_port}
    if sim is not None:
        wanted["the provider simulator"] = sim[1]
    busy = [f"{port} ({what})" for what, port in wanted.items() if port_busy(port)]
    if busy:
        say(
            f"Port {', '.join(busy)} is already in use: another Songsmith, or another program, is running. "
            "Stop it, or pick free ports: make run PORT=8502 (app), METRICS_PORT=..., SIMULATOR_PORT=... "
            "with the provider base URLs and DOWNLOAD_ALLOWED_HOSTS pointing at the new simulator port."
        )
        return 2
    from core.first_run import ensure_first_admin
    from core.migrate import upgrade

    upgrade(settings.database_url)
    ensure_first_admin(deps, say)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    stack = Stack(env=dict(os.environ))
    try:
        ensure_redis(stack, settings.redis_url)
        url = start_product(
            stack,
            sim_port=sim[1] if sim else None,
            sim_host=sim[0] if sim else "127.0.0.1",
            app_port=app_port,
            open_browser=open_browser,
        )
        say(f"Songsmith is running at {url.replace('127.0.0.1', 'localhost')}  (Ctrl-C stops everything)")
        while (problem := stack.failed()) is None:
            time.sleep(1)
        say(f"stopping: {problem}")
        return 1
    except KeyboardInterrupt:
        say("stopping…")
        return 0
    except (RuntimeError, TimeoutError) as exc:
        say(f"Could not start Songsmith: {exc}. The process logs above say why.")
        return 1
    finally:
        # `make` forwards the signal it got, and a second Ctrl-C is common: neither may abort the
        # cleanup half way and leave children running in their own sessions.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()
