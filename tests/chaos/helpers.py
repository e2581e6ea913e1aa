"""Chaos tooling: real worker processes, a provider that can go down, fault injectors, and the audit.

Every scenario drives jobs into every state (pending, running mid-LLM call, waiting on a remote task,
completed), injects one fault, lets the system settle while the reconciler runs, then audits the
database, RQ, the simulator and ARTIFACT_DIR. The audit is the test: a `Tally` of what it found.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq import Worker
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE
from sqlalchemy import func, select, text

from core.config import Settings
from core.deps import Dependencies
from core.jobs import submit_job
from core.models import ACTIVE_STATUSES, COMPLETED, FAILED, TERMINAL_STATUSES, Artifact, Job, JobEvent
from core.reconciler import reconcile
from core.users import Actor
from simulator.server import RunningSimulator, start_server
from simulator.state import Latency, SimState
from tests.conftest import settings_env

ROOT = Path(__file__).resolve().parents[2]
LLM_STEPS = ("write_options", "write_image_prompt")
TASK_COLUMN = {"render_audio": "music_task_id", "render_cover": "image_task_id"}
EVERY_STATE = ("pending", "running-llm", "waiting-remote", "completed")

# Short timings for the worker subprocesses and the in-test reconciler; limits that would only
# slow the run down are off (0), so every delay seen here comes from a fault or a provider.
CHAOS_SETTINGS: dict[str, object] = {
    "poll_initial_seconds": 0.5,
    "poll_growth": 1.5,
    "poll_max_seconds": 1.0,
    "retry_base_seconds": 0.2,
    "retry_max_seconds": 1.0,
    "step_retry_budget": 8,
    "jobs_per_minute": 0,
    "jobs_per_day": 0,
    "openrouter_rpm": 0,
    "suno_requests_per_10s": 0,
    "nanobanana_requests_per_10s": 0,
    "music_max_in_flight": 1000,
    "image_max_in_flight": 1000,
    "worker_heartbeat_seconds": 1,
    "abandoned_after_seconds": 4.0,
    "reconcile_grace_seconds": 1.0,
    "llm_read_timeout": 10.0,
    "log_level": "WARNING",
}
LATENCY = {"llm": 0.6, "music": 1.5, "image": 1.0}


def step_of(rq_job_id: str | None) -> str | None:
    """The step an RQ delivery runs: ids are `<job id>_<step>_<suffix>`."""
    if not rq_job_id or "_" not in rq_job_id:
        return None
    return rq_job_id.split("_", 1)[1].rsplit("_", 1)[0]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# --- the provider -------------------------------------------------------------------------------


class RestartableSimulator:
    """The simulator on a fixed port that can really go away: `down()` closes the listening socket
    (clients get ECONNREFUSED), `up()` listens on the same port again with the same state.

    The state (tasks, counters, request log) lives on across the outage, as a real provider's
    backend keeps rendering while its API is unreachable. A `python -m simulator` subprocess killed
    and restarted would lose every task, which is a different fault (the provider forgot our paid
    tasks) than the one scenario 3 is about.
    """

    def __init__(self) -> None:
        self.state = SimState(latency=Latency(**LATENCY))
        self._server: RunningSimulator | None = start_server(port=0, state=self.state)
        self.port = self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def up(self) -> None:
        deadline = time.monotonic() + 10
        while self._server is None:
            try:
                self._server = start_server(port=self.port, state=self.state)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def control(self, path: str, payload: dict | None = None, method: str = "POST") -> dict:
        resp = httpx.request(method, f"{self.url}{path}", json=payload, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def stats(self) -> dict:
        return self.control("/_sim/stats", method="GET")

    def close(self) -> None:
        self.down()


@contextmanager
def provider_down(sim: RestartableSimulator, seconds: float) -> Iterator[None]:
    sim.down()
    try:
        time.sleep(seconds)
        yield
    finally:
        sim.up()


# --- workers ------------------------------------------------------------------------------------


class Fleet:
    """Real `python -m worker` processes, each in its own process group (a machine of its own)."""

    def __init__(self, settings: Settings, log_dir: Path, **env: str) -> None:
        self.settings, self.log_dir, self.env = settings, log_dir, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.rq_names: dict[str, str] = {}
        self._seq = 0

    def start(self, name: str | None = None) -> str:
        self._seq += 1
        name = name or f"w{self._seq}"
        env = settings_env(self.settings, LOG_JSON="true", **self.env)
        log = (self.log_dir / f"{name}.log").open("ab")
        rq_name = self.rq_names.setdefault(name, f"{name}-{uuid.uuid4().hex[:6]}")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "worker", "--name", rq_name],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return name

    def executing(self, redis: Redis, name: str) -> list[str]:
        """The RQ job ids this worker is executing, for either worker class and even after a flush:
        RQ re-adds an execution to the worker's own set when it starts one (the worker registry, read
        by `current_delivery`, is not rebuilt until the worker restarts)."""
        members = redis.smembers(WORKER_EXECUTIONS_KEY_TEMPLATE.format(self.rq_names[name]))
        return sorted(m.decode().rsplit(":", 1)[0] for m in members)

    def log_tail(self, name: str, size: int = 2000) -> str:
        data = (self.log_dir / f"{name}.log").read_bytes()
        return data[-size:].decode("utf-8", "replace")

    def current_delivery(self, redis: Redis, name: str) -> str | None:
        """The RQ job id (= the runner's lease owner) this worker's horse is executing, if any."""
        pid = self.procs[name].pid
        for worker in Worker.all(connection=redis):
            if worker.pid == pid:
                return worker.get_current_job_id()
        return None

    def sigterm(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGTERM)

    def sigkill_group(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(10)

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@contextmanager
def fleet(settings: Settings, log_dir: Path, workers: int = 2, **env: str) -> Iterator[Fleet]:
    f = Fleet(settings, log_dir, **env)
    try:
        for _ in range(workers):
            f.start()
        yield f
    finally:
        f.stop_all()


@contextmanager
def reconciling(deps: Dependencies, interval: float = 1.0) -> Iterator[Counter]:
    """Run the reconciler every `interval` seconds in a thread, as `python -m worker.cron` would.

    A pass that fails (the database or Redis is the thing being broken) is counted and retried.
    """
    stop = threading.Event()
    counts: Counter = Counter()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                counts["requeued"] += len(reconcile(deps).requeued)
                counts["passes"] += 1
            except Exception:
                counts["errors"] += 1

    thread = threading.Thread(target=loop, name="chaos-reconciler", daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(30)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- faults -------------------------------------------------------------------------------------


def terminate_pg_backends(deps: Dependencies) -> int:
    """Kill every other backend of this run's database (the workers', the app's, the reconciler's)."""
    with deps.engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    deps.engine.dispose()  # our own pooled connections were killed too (pre-ping would notice)
    return int(killed)


def restart_pg_allowed() -> bool:
    return os.environ.get("CHAOS_RESTART_PG") == "1"


def redis_loses_everything(redis_url: str) -> int:
    """FLUSHDB on this run's db index, then drop every connection to it (never FLUSHALL)."""
    r = Redis.from_url(redis_url)
    index = str(r.connection_pool.connection_kwargs.get("db", 0))
    r.flushdb()
    me = r.client_id()
    killed = 0
    for client in r.client_list():
        if str(client.get("db")) == index and int(client["id"]) != me:
            killed += int(r.client_kill_filter(_id=client["id"], skipme=True) or 0)
    r.close()
    return killed


@contextmanager
def disk_refuses_writes(artifact_dir: Path) -> Iterator[None]:
    """Make ARTIFACT_DIR unwritable in a way root cannot override.

    Root ignores permission bits (chmod 0500 does nothing) and this machine has no spare mount for
    a read-only or full filesystem, so the directory is moved aside and a regular FILE takes its
    parent's place: every mkdir under ARTIFACT_DIR then fails with ENOTDIR, and every read of an
    existing file fails too (like a mount that went away). Moving the directory back repairs it
    with every file that was stored before the fault.
    """
    parent = artifact_dir.parent
    saved = parent.with_name(parent.name + ".saved")
    parent.rename(saved)
    parent.write_text("not a directory: the disk is refusing writes\n")
    try:
        yield
    finally:
        parent.unlink()
        saved.rename(parent)


# --- jobs in every state ------------------------------------------------------------------------


def classify(job: Job, now: datetime) -> str:
    leased = job.lease_until is not None and job.lease_until > now and job.lease_owner is not None
    if job.status != "running":
        return job.status
    if job.current_step in LLM_STEPS and leased:
        return "running-llm"
    task_col = TASK_COLUMN.get(job.current_step or "")
    if task_col and getattr(job, task_col) is not None and not leased:
        return "waiting-remote"
    if task_col and getattr(job, task_col) is None and leased:
        return "submitting"
    return "running-other"


def states(deps: Dependencies, ids: Iterable[uuid.UUID] | None = None) -> Counter:
    now = datetime.now(UTC)
    with deps.sessionmaker() as s:
        q = select(Job)
        if ids is not None:
            q = q.where(Job.id.in_(list(ids)))
        seen: Counter = Counter()
        for job in s.scalars(q):
            kind = classify(job, now)
            seen[kind] += 1
            if kind == "waiting-remote" and job.current_step == "render_audio":
                seen["waiting-music"] += 1
        return seen


def drive_to_every_state(
    deps: Dependencies,
    actor: Actor,
    *,
    need: Iterable[str] = EVERY_STATE,
    max_jobs: int = 30,
    timeout: float = 150,
    label: str = "chaos",
) -> tuple[list[uuid.UUID], Counter]:
    """Submit jobs until pending, mid-LLM, waiting-remote and completed jobs all exist at once.

    Two jobs first, until one completes (a backlog would make the first completion wait for every
    other job's steps), then one job at a time until the other states show. Returns the ids and
    the state counts seen just before the caller injects its fault.
    """
    need = set(need)
    deadline = time.monotonic() + timeout

    def submit() -> None:
        ids.append(submit_job(deps, actor, f"A {label} song number {len(ids)} about a lighthouse").id)

    ids: list[uuid.UUID] = []
    for _ in range(2):
        submit()
    wait_for(lambda: states(deps, ids)["completed"], timeout, "a first completed job", every=0.2)
    seen: Counter = Counter()
    while time.monotonic() < deadline:
        seen = states(deps, ids)
        if need <= {k for k, v in seen.items() if v}:
            return ids, seen
        # Keep a small backlog only: a long one starves the later steps (FIFO), and no job would
        # reach a remote task while others are still pending.
        if len(ids) < max_jobs and seen.get("pending", 0) < 2:
            submit()
        time.sleep(0.3 if len(ids) < max_jobs else 0.1)
    raise AssertionError(f"jobs never reached every state {sorted(need)}; last seen {dict(seen)}")


def settle(deps: Dependencies, ids: Iterable[uuid.UUID] | None, timeout: float) -> Counter:
    """Wait until no job is active any more (or time runs out); returns the final state counts."""
    deadline = time.monotonic() + timeout
    while True:
        seen = states(deps, ids)
        active = sum(v for k, v in seen.items() if k not in TERMINAL_STATUSES)
        if not active or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


# --- the audit ----------------------------------------------------------------------------------


@dataclass
class Tally:
    scenario: str
    jobs: int = 0
    completed: int = 0
    failed_with_reason: int = 0
    stuck: int = 0
    duplicated_paid_calls: int = 0
    lost_artifacts: int = 0
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.scenario} | {self.jobs} | {self.completed} | {self.failed_with_reason} | "
            f"{self.stuck} | {self.duplicated_paid_calls} | {self.lost_artifacts}"
        )

    def assert_clean(self) -> None:
        bad = self.stuck or self.duplicated_paid_calls or self.lost_artifacts
        failed_without_reason = self.jobs - self.completed - self.failed_with_reason - self.stuck
        assert not bad and not failed_without_reason and not self.problems, (
            f"{self.line()}\nproblems: {self.problems[:20]}"
        )


def audit(deps: Dependencies, sim: RestartableSimulator, scenario: str, ids: list[uuid.UUID]) -> Tally:
    """Count stuck jobs, duplicated paid calls and step runs, lost or altered artifacts."""
    tally = Tally(scenario, jobs=len(ids))
    root = Path(deps.settings.artifact_dir)
    with deps.sessionmaker() as s:
        jobs = list(s.scalars(select(Job).where(Job.id.in_(ids))))
        runs = s.execute(
            select(JobEvent.job_id, JobEvent.step, JobEvent.attempt, func.count())
            .where(JobEvent.job_id.in_(ids), JobEvent.kind == "step", JobEvent.status == "succeeded")
            .group_by(JobEvent.job_id, JobEvent.step, JobEvent.attempt)
        ).all()
        arts = {a.id: a for a in s.scalars(select(Artifact).where(Artifact.job_id.in_(ids)))}
    if len(jobs) != len(ids):
        tally.problems.append(f"{len(ids) - len(jobs)} job rows are missing")
    for job in jobs:
        if job.status in ACTIVE_STATUSES:
            tally.stuck += 1
            tally.problems.append(f"stuck {job.id} {job.status} at {job.current_step}")
        elif job.status == FAILED and job.error_message:
            tally.failed_with_reason += 1
        elif job.status == COMPLETED:
            tally.completed += 1
            for art_id in (job.audio_artifact_id, job.image_artifact_id):
                art = arts.get(art_id) if art_id else None
                path = root / art.path if art else None
                if art is None or path is None or not path.is_file():
                    tally.lost_artifacts += 1
                    tally.problems.append(f"artifact {art_id} of {job.id} is missing")
                elif hashlib.sha256(path.read_bytes()).hexdigest() != art.sha256:
                    tally.lost_artifacts += 1
                    tally.problems.append(f"artifact {art_id} of {job.id} does not match its sha256")
        else:
            tally.problems.append(f"{job.id} ended {job.status} without a reason")
    for job_id, step, attempt, n in runs:
        if n > 1:
            if step in LLM_STEPS or step in TASK_COLUMN:
                tally.duplicated_paid_calls += n - 1
            tally.problems.append(f"{job_id} has {n} succeeded runs of {step} in attempt {attempt}")
    _audit_provider(sim, jobs, tally)
    return tally


def _audit_provider(sim: RestartableSimulator, jobs: list[Job], tally: Tally) -> None:
    """Every task the simulator created must belong to exactly one job: an extra one was paid twice."""
    stats = sim.stats()
    for kind, column in (("music", "music_task_id"), ("image", "image_task_id")):
        created = set(stats["tasks"][kind])
        ours = {getattr(j, column) for j in jobs if getattr(j, column)}
        orphans = created - ours
        tally.duplicated_paid_calls += len(orphans)
        if orphans:
            tally.problems.append(f"{len(orphans)} {kind} tasks were paid for but belong to no job")
        if stats["submissions"][kind] != len(created):
            tally.problems.append(f"{kind}: {stats['submissions'][kind]} submissions, {len(created)} tasks")
        for job in jobs:
            if job.status == COMPLETED and getattr(job, column) not in created:
                tally.problems.append(f"{job.id} completed with a {kind} task the provider never made")
        tally.notes[f"{kind}_submissions"] = stats["submissions"][kind]


def rq_leftovers(deps: Dependencies) -> dict[str, int]:
    """What RQ still holds once every job is terminal: nothing queued, scheduled or started."""
    out: dict[str, int] = {}
    for q in deps.queues.ordered():
        out[f"{q.name}:queued"] = q.count
        out[f"{q.name}:scheduled"] = q.scheduled_job_registry.count
        out[f"{q.name}:started"] = q.started_job_registry.count
    return out
