"""The browser tests' stack: the real product on free ports with its own database, Redis db and artifacts."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core import stack as stk
from core.auth import create_user
from core.config import load_settings
from core.deps import Dependencies, build_dependencies
from core.models import TERMINAL_STATUSES, Job
from core.users import Actor
from tests.conftest import claimed_redis_db, scratch_database

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"
LATENCY = {"llm": 0.1, "music": 2.0, "image": 1.0}
LOG_TAIL_LINES = 40
EXTRA_WORKERS = int(os.environ.get("E2E_EXTRA_WORKERS", "2"))


@dataclass
class RunningStack:
    url: str
    sim_url: str
    deps: Dependencies
    stack: stk.Stack
    log_dir: Path
    shots: Path

    def sim(self, path: str, payload: dict | None = None, method: str = "POST") -> dict:
        resp = httpx.request(method, f"{self.sim_url}{path}", json=payload, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def log_tails(self) -> str:
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            parts.append(f"--- {log} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(parts)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="package")
def e2e_pg_url() -> Iterator[str]:
    """A database of the browser tests' own: the rest of the suite truncates the shared one between tests."""
    with scratch_database("songsmith_e2e") as url:
        yield url


@pytest.fixture(scope="package")
def e2e_redis_url() -> Iterator[str]:
    """An empty Redis db index of our own, taken from the top so it rarely meets the suite's own."""
    with claimed_redis_db(range(15, 0, -1), "the browser tests") as url:
        yield url


@pytest.fixture(scope="package")
def live(
    e2e_pg_url: str, e2e_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    """Simulator, one RQ worker with the scheduler and Streamlit, started by the same code as `make run`."""
    base = tmp_path_factory.mktemp("e2e")
    sim_port, app_port = stk.free_port(), stk.free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        **os.environ,
        "DATABASE_URL": e2e_pg_url,
        "REDIS_URL": e2e_redis_url,
        "ARTIFACT_DIR": str(base / "artifacts"),
        "OPENROUTER_BASE_URL": f"{sim_url}/api/v1",
        "SUNO_BASE_URL": sim_url,
        "NANOBANANA_BASE_URL": sim_url,
        "DOWNLOAD_ALLOWED_HOSTS": f"127.0.0.1:{sim_port}",
        "SIMULATOR_PORT": str(sim_port),
        "POLL_INITIAL_SECONDS": "0.3",
        "POLL_MAX_SECONDS": "1",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "1",
        "LOG_JSON": "true",
        # The simulator's startup latency, which /_sim/reset restores.
        "SIM_LLM_LATENCY": str(LATENCY["llm"]),
        "SIM_MUSIC_LATENCY": str(LATENCY["music"]),
        "SIM_IMAGE_LATENCY": str(LATENCY["image"]),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    settings = load_settings(
        database_url=e2e_pg_url,
        redis_url=e2e_redis_url,
        artifact_dir=base / "artifacts",
        openrouter_base_url=f"{sim_url}/api/v1",
        suno_base_url=sim_url,
        nanobanana_base_url=sim_url,
        download_allowed_hosts=f"127.0.0.1:{sim_port}",
    )
    deps = build_dependencies(settings)
    stack = stk.Stack(env=env, log_dir=base / "logs")
    running = RunningStack("", sim_url, deps, stack, base / "logs", base / "screenshots")
    running.shots.mkdir()
    try:
        running.url = stk.start_product(stack, sim_port=sim_port, app_port=app_port, open_browser=False)
        # More workers (no second scheduler), as a deployment scales out: the 20-job batch journey
        # is bound by RQ's fork per step, not by CPU.
        for n in range(2, EXTRA_WORKERS + 2):
            stack.start(f"worker-{n}", [stk.PY, "-m", "worker", "--no-scheduler"])
        running.sim("/_sim/config", {"latency": LATENCY})
        yield running
    except Exception:
        print(running.log_tails())  # noqa: T201 - the failure report is the only place these go
        raise
    finally:
        stack.stop()
        deps.close()


@pytest.fixture(scope="package")
def users(live: RunningStack) -> dict[str, Actor]:
    """Two analysts, created in the stack's database; journeys sign in as them with PASSWORD."""
    return {key: create_user(live.deps, f"{key}-e2e", PASSWORD) for key in ("alice", "bob")}


@pytest.fixture(scope="package")
def browser(live: RunningStack) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live: RunningStack) -> Iterator[object]:
    """A fresh browser context (so a fresh Streamlit session) per journey; the simulator reset around it."""
    live.sim("/_sim/reset")
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    yield pg
    context.close()
    live.sim("/_sim/reset")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Save the journey's end state as a screenshot; on failure, name it and add the processes' log tails."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or "page" not in getattr(item, "funcargs", {}):
        return
    live: RunningStack = item.funcargs["live"]
    shot = live.shots / f"{item.name}.png"
    try:
        item.funcargs["page"].screenshot(path=str(shot), full_page=True)
    except Exception as exc:  # a closed page must not hide the real failure
        shot = Path(f"(no screenshot: {exc})")
    item.user_properties.append(("screenshot", str(shot)))
    if report.failed:
        report.sections.append(("e2e screenshot", str(shot)))
        report.sections.append(("e2e process logs", live.log_tails()))


def wait_for_jobs(deps: Dependencies, job_ids: list, timeout: float = 90.0) -> dict[str, str]:
    """Poll the database (the real worker does the work) until every job is terminal or time is up."""
    ids = [uuid.UUID(str(j)) for j in job_ids]
    deadline = time.monotonic() + timeout
    while True:
        with deps.sessionmaker() as s:
            statuses = {str(j.id): j.status for j in s.query(Job).filter(Job.id.in_(ids))}
        if all(v in TERMINAL_STATUSES for v in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.3)


@pytest.fixture(scope="package")
def finished_jobs(live: RunningStack, users: dict[str, Actor]) -> dict[str, str]:
    """Two of alice's jobs, run by the stack's worker: one completes, one fails at the song step."""
    from core.jobs import submit_job

    live.sim(
        "/_sim/faults", {"faults": [{"endpoint": "suno_generate", "kind": "task_sensitive", "times": 1}]}
    )
    failing = submit_job(live.deps, users["alice"], "A doomed chant", idempotency_key=uuid.uuid4().hex)
    wait_for_jobs(live.deps, [failing.id])
    ok = submit_job(
        live.deps, users["alice"], "A bright polka about bicycles", idempotency_key=uuid.uuid4().hex
    )
    statuses = wait_for_jobs(live.deps, [ok.id])
    live.sim("/_sim/reset")
    return {**statuses, **wait_for_jobs(live.deps, [failing.id], timeout=0)}
