"""RQ entry points: thin wrappers that find this process's Dependencies and call into core."""

from __future__ import annotations

import gc
import os
import uuid
from functools import partial

from rq import get_current_job
from sqlalchemy.orm import configure_mappers

from core.config import load_settings
from core.deps import Dependencies, build_dependencies
from core.logs import correlation
from core.models import Job
from core.pipeline import runner

# Per-process cache: RQ forks a work-horse per job, and pooled connections must not cross fork().
_cache: dict[str, object] = {}


def use_dependencies(deps: Dependencies | None) -> None:
    """Tests (and in-process SimpleWorkers) hand their own Dependencies to the tasks."""
    if deps is None:
        _cache.pop("override", None)
    else:
        _cache["override"] = deps


def prepare_parent(deps: Dependencies, *, warm: bool = False) -> None:
    """Build once in the worker process: building costs ~0.4 s, a fork costs ~1 ms.

    With `warm` (forking workers) the parent also configures the ORM mappers and compiles the step's
    first statement, then closes the connection it used and freezes the heap: each work-horse inherits
    warm caches instead of paying ~20 ms to build them, and the garbage collector no longer walks
    (and so copies) the parent's objects in every horse. The pool is empty when fork() happens; each
    work-horse still drops the inherited pool, as SQLAlchemy's pooling docs advise.
    """
    _cache["deps"] = deps
    _cache["pid"] = os.getpid()
    # Any fork of this process (a work-horse, RQ's scheduler process, started again whenever it wins
    # the scheduler lock) forgets the pooled connections without closing them: an inline worker's pool
    # is live by then, and a child closing an inherited socket would cut the parent's connection.
    os.register_at_fork(after_in_child=partial(deps.engine.dispose, close=False))
    if warm:
        configure_mappers()
        with deps.sessionmaker() as s:
            s.get(Job, uuid.uuid4())
        deps.engine.dispose()
        gc.freeze()


def get_dependencies() -> Dependencies:
    override = _cache.get("override")
    if isinstance(override, Dependencies):
        return override
    deps = _cache.get("deps")
    if isinstance(deps, Dependencies) and _cache.get("pid") != os.getpid():
        deps.engine.dispose(close=False)
        _cache["pid"] = os.getpid()
    elif not isinstance(deps, Dependencies):
        deps = build_dependencies(load_settings())
        _cache["deps"], _cache["pid"] = deps, os.getpid()
    assert isinstance(deps, Dependencies)
    return deps


def run_step(job_id: str, step: str, attempt: int) -> str:
    rq_job = get_current_job()
    delivery = rq_job.id if rq_job is not None else uuid.uuid4().hex
    corr = (rq_job.meta or {}).get("correlation_id") if rq_job is not None else None
    with correlation(corr, job_id=job_id, step=step, attempt=attempt):
        return runner.run_step(get_dependencies(), job_id, step, attempt, delivery=delivery)


def reconcile() -> dict[str, object]:
    """Run by RQ's cron scheduler (`python -m worker.cron`) every RECONCILE_INTERVAL_SECONDS."""
    from core.reconciler import reconcile as run_reconcile

    report = run_reconcile(get_dependencies())
    return {"checked": report.checked, "requeued": len(report.requeued)}
