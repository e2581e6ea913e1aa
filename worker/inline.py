"""The default worker: runs each step in the worker process itself, with RQ's heartbeats kept alive.

A step is a few database statements and one short provider call; RQ's forking `Worker` spends more on
the fork than on the step (a fresh PostgreSQL connection, cold SQLAlchemy caches and copy-on-write page
faults in every work-horse: ~130 ms against ~50 ms per step on the benchmark machine). RQ's own
`SimpleWorker` skips the fork but sends no heartbeats while a job runs, and the reconciler takes a step
run without heartbeats for ABANDONED_AFTER_SECONDS as dead; this class beats from a thread, as the
forking worker's parent does while it waits for its horse. `WORKER_CLASS=fork` brings the fork back
for isolation (a step that leaks memory or crashes the interpreter takes only its horse down).
"""

from __future__ import annotations

import threading
from typing import Any

from rq import SimpleWorker
from rq.worker import WorkerStatus

from core.logs import get_logger

log = get_logger("songsmith.worker")


class InlineWorker(SimpleWorker):
    def execute_job(self, job: Any, queue: Any) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(job, execution, done), name=f"heartbeat-{job.id}", daemon=True
        )
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)

    def _beat(self, job: Any, execution: Any, done: threading.Event) -> None:
        while not done.wait(self.job_monitoring_interval):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception:  # Redis away for a moment: the next beat tries again
                log.warning("heartbeat_failed", rq_job_id=job.id, exc_info=True)
