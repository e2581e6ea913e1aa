"""Access: every core service that takes the id of something a user owns refuses other users' objects.

The services are found by introspection (public functions in `core` whose parameters start
`(deps, actor, <name>_id...)`); each must have a row in OWNED_BY_ID, or a reason in NOT_OWNED, so a
new function cannot skip the isolation check. A refused call raises NotFound (or reports "not found"
for the bulk call) and leaves the job, its events and its batch exactly as they were; the owner's
same call does change them, so the test can tell. Artifact paths cannot escape ARTIFACT_DIR.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

import core
from core.batches import cancel_remaining, create_batch, get_batch, results_csv, retry_failed_in_batch
from core.errors import NotFound
from core.jobs import get_job, read_artifact
from core.lifecycle import cancel_job, regenerate_job, retry_job, retry_many
from core.models import COMPLETED, FAILED, PENDING, Artifact, Batch, Job, JobEvent
from core.storage import LocalArtifactStore, StorageError
from tests.accounts.helpers import SECRET_CONCEPT, owned_job
from tests.factories import make_user


@dataclass(frozen=True)
class World:
    job_id: uuid.UUID  # completed, with audio and image artifacts
    failed_id: uuid.UUID  # failed at render_audio
    pending_id: uuid.UUID  # pending (cancellable)
    batch_id: uuid.UUID  # one failed job and one pending job
    audio_id: int


Call = Callable[[Any, Any, World], Any]

# qualified name → (call, what the owner's call changes, so "nothing changed" is a real check).
OWNED_BY_ID: dict[str, tuple[Call, bool]] = {
    "core.jobs.get_job": (lambda d, a, w: get_job(d, a, w.job_id), False),
    "core.jobs.read_artifact": (lambda d, a, w: read_artifact(d, a, w.audio_id), False),
    "core.lifecycle.retry_job": (lambda d, a, w: retry_job(d, a, w.failed_id), True),
    "core.lifecycle.regenerate_job": (
        lambda d, a, w: regenerate_job(d, a, w.job_id, from_step="render_cover"),
        True,
    ),
    "core.lifecycle.cancel_job": (lambda d, a, w: cancel_job(d, a, w.pending_id), True),
    "core.lifecycle.retry_many": (lambda d, a, w: retry_many(d, a, [w.failed_id]), True),
    "core.batches.get_batch": (lambda d, a, w: get_batch(d, a, w.batch_id), False),
    "core.batches.retry_failed_in_batch": (lambda d, a, w: retry_failed_in_batch(d, a, w.batch_id), True),
    "core.batches.cancel_remaining": (lambda d, a, w: cancel_remaining(d, a, w.batch_id), True),
    "core.batches.results_csv": (lambda d, a, w: results_csv(d, a, w.batch_id), False),
}
NOT_OWNED = {
    "core.model_catalog.choose_model": "model_id names a catalog model, not a user's object",
    "core.model_catalog.set_default_model": "model_id names a catalog model (admin only)",
}


def id_services() -> set[str]:
    found = set()
    for info in pkgutil.walk_packages(core.__path__, "core."):
        if info.name.endswith("__main__") or ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != module.__name__:
                continue
            params = list(inspect.signature(fn).parameters)
            if params[:2] == ["deps", "actor"] and len(params) > 2 and params[2].endswith(("_id", "_ids")):
                found.add(f"{module.__name__}.{name}")
    return found


def test_every_service_taking_an_id_is_in_the_isolation_table():
    found = id_services()
    assert "core.lifecycle.retry_job" in found and "core.batches.results_csv" in found  # the scan works
    missing = found - OWNED_BY_ID.keys() - NOT_OWNED.keys()
    assert not missing, f"add these to OWNED_BY_ID (or NOT_OWNED with a reason): {sorted(missing)}"
    assert not (OWNED_BY_ID.keys() - found), "a table row names a function that no longer exists"


def _world(deps, owner) -> World:
    done = owned_job(deps, owner)
    failed = owned_job(deps, owner).job_id
    pending = owned_job(deps, owner).job_id
    with deps.sessionmaker.begin() as s:
        row = s.get(Job, failed)
        row.status, row.error_step, row.error_message = FAILED, "render_audio", "provider said no"
        row = s.get(Job, pending)
        row.status, row.current_step, row.finished_at = PENDING, "write_options", None
    batch = create_batch(deps, owner, ["a batch song about rivers", "a batch song about hills"])
    with deps.sessionmaker.begin() as s:
        first = s.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.concept)).first()
        first.status, first.error_step, first.error_message = FAILED, "write_options", "no"
    return World(done.job_id, failed, pending, batch.id, done.audio_id)


def _snapshot(deps, world: World) -> dict[str, Any]:
    """Every job and batch row the world holds, column by column, plus event and artifact counts."""
    with deps.sessionmaker() as s:
        jobs = {
            str(j.id): {c.key: getattr(j, c.key) for c in Job.__table__.columns}
            for j in s.scalars(select(Job).order_by(Job.id))
        }
        batch = s.get(Batch, world.batch_id)
        return {
            "jobs": jobs,
            "batch": {c.key: getattr(batch, c.key) for c in Batch.__table__.columns},
            "events": s.scalar(select(func.count()).select_from(JobEvent)),
            "artifacts": s.scalar(select(func.count()).select_from(Artifact)),
            "queued": sum(len(q) for q in deps.queues.ordered()),
        }


@pytest.fixture
def people(deps, sim):
    alice, mallory = make_user(deps, "alice"), make_user(deps, "mallory")
    return alice, mallory, _world(deps, alice)


@pytest.mark.parametrize("name", sorted(OWNED_BY_ID))
def test_a_stranger_is_refused_and_nothing_changes(deps, people, hostile, name):
    alice, mallory, world = people
    call, mutates = OWNED_BY_ID[name]
    before = _snapshot(deps, world)
    if name == "core.lifecycle.retry_many":
        outcome = call(deps, mallory, world)
        ok = outcome.retried == [] and outcome.messages == [f"{world.failed_id}: not found."]
        hostile.held(f"{name} by a stranger", ok)
    else:
        err = hostile.refused(f"{name} by a stranger", lambda: call(deps, mallory, world), exc=NotFound)
        assert SECRET_CONCEPT not in err.message and "alice" not in err.message
    hostile.held(f"{name} by a stranger left the rows untouched", _snapshot(deps, world) == before)
    if mutates:  # the control: the owner's same call does change something, so the check can fail
        call(deps, alice, world)
        assert _snapshot(deps, world) != before, f"{name} by its owner changed nothing"


@pytest.mark.parametrize("name", sorted(OWNED_BY_ID))
def test_forged_and_malformed_ids_are_not_found(deps, people, hostile, name):
    _alice, mallory, world = people
    call, _ = OWNED_BY_ID[name]
    for forged in ("../../etc/passwd", "' OR 1=1 --", "0", str(uuid.uuid4())):
        fake = World(forged, forged, forged, forged, 10**9)  # type: ignore[arg-type]
        if name == "core.lifecycle.retry_many":
            hostile.held(f"{name} {forged!r}", call(deps, mallory, fake).retried == [])
            continue
        hostile.refused(f"{name} with id {forged!r}", lambda f=fake: call(deps, mallory, f), exc=NotFound)
    assert world.job_id  # the real objects still exist


def test_read_artifact_serves_the_owner_only(deps, people, hostile):
    alice, mallory, world = people
    data, ctype, _name = read_artifact(deps, alice, world.audio_id)
    assert data == b"RIFF-secret" and ctype == "audio/wav"
    with deps.sessionmaker() as s:
        ids = list(s.scalars(select(Artifact.id)))
    for art_id in ids:
        hostile.refused(
            f"artifact {art_id} by a stranger", lambda i=art_id: read_artifact(deps, mallory, i), exc=NotFound
        )


def test_a_completed_jobs_row_is_untouched_after_a_refused_regenerate(deps, people, hostile):
    _alice, mallory, world = people
    with deps.sessionmaker() as s:
        assert s.get(Job, world.job_id).status == COMPLETED
    hostile.refused(
        "regenerate song by a stranger",
        lambda: regenerate_job(deps, mallory, world.job_id, from_step="render_audio"),
        exc=NotFound,
    )
    with deps.sessionmaker() as s:
        job = s.get(Job, world.job_id)
        hostile.held("regenerate left the job completed", job.status == COMPLETED and job.attempt == 1)


# --- artifact paths ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> LocalArtifactStore:
    root = tmp_path / "artifacts"
    root.mkdir()
    (tmp_path / "outside.txt").write_bytes(b"secret outside the store")
    return LocalArtifactStore(root)


ESCAPES = [
    "../outside.txt",
    "../../etc/passwd",
    "a/../../outside.txt",
    "/etc/passwd",
    "//etc/passwd",
    "job/../../../outside.txt",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_artifact_paths_cannot_escape_the_artifact_dir(store, tmp_path, hostile, path):
    hostile.refused(f"read {path}", lambda: store.read(path), exc=StorageError, match="outside")
    hostile.refused(f"save {path}", lambda: store.save(path, b"x"), exc=StorageError, match="outside")
    hostile.held(f"exists {path}", store.exists(path) is False)
    assert (tmp_path / "outside.txt").read_bytes() == b"secret outside the store"


def test_symlinks_out_of_the_artifact_dir_are_refused(store, tmp_path, hostile):
    os.symlink(tmp_path / "outside.txt", store.root / "link.wav")
    os.symlink(tmp_path, store.root / "linkdir")
    for path in ("link.wav", "linkdir/outside.txt", "linkdir/new.wav"):
        hostile.refused(f"symlink {path} read", lambda p=path: store.read(p), exc=StorageError)
    hostile.refused("symlinked dir save", lambda: store.save("linkdir/new.wav", b"x"), exc=StorageError)
    assert not (tmp_path / "new.wav").exists()
    assert (tmp_path / "outside.txt").read_bytes() == b"secret outside the store"


def test_a_stored_path_pointing_outside_is_not_served_by_read_artifact(deps, people, hostile, tmp_path):
    alice, _mallory, world = people
    (deps.settings.artifact_dir.parent / "leak.txt").write_bytes(b"not an artifact")
    with deps.sessionmaker.begin() as s:
        s.get(Artifact, world.audio_id).path = "../leak.txt"  # a corrupted or injected row
    err = hostile.refused(
        "read_artifact of a row pointing outside",
        lambda: read_artifact(deps, alice, world.audio_id),
        exc=StorageError,
    )
    assert "leak" not in str(err)
