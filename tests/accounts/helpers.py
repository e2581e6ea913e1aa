"""Objects one user owns, made through the real services plus stored files, for isolation tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core.deps import Dependencies
from core.jobs import submit_job
from core.models import COMPLETED, Artifact, Job
from core.users import Actor

SECRET_CONCEPT = "a private lament only its owner may read"
SECRET_TITLE = "Owner-Only Title"
SECRET_LYRICS = "these lyrics belong to one analyst"


@dataclass(frozen=True)
class Owned:
    job_id: uuid.UUID
    audio_id: int
    image_id: int


def owned_job(deps: Dependencies, owner: Actor) -> Owned:
    """A completed job with an audio and a cover file, without the minutes of a pipeline run."""
    job = submit_job(deps, owner, SECRET_CONCEPT)
    now = deps.clock()
    ids = {}
    for kind, ctype, data in (("audio", "audio/wav", b"RIFF-secret"), ("image", "image/png", b"PNG-secret")):
        stored = deps.storage.save(f"{job.id}/{kind}-v1", data)
        with deps.sessionmaker.begin() as s:
            row = Artifact(
                job_id=job.id,
                kind=kind,
                version=1,
                path=stored.path,
                content_type=ctype,
                size_bytes=stored.size_bytes,
                sha256=stored.sha256,
                created_at=now,
            )
            s.add(row)
            s.flush()
            ids[kind] = row.id
    with deps.sessionmaker.begin() as s:
        row = s.get(Job, job.id)
        row.status, row.current_step, row.finished_at = COMPLETED, None, now
        row.chosen_option = {"title": SECRET_TITLE, "style": "dirge", "lyrics": SECRET_LYRICS}
        row.song_options = [row.chosen_option]
        row.chosen_index = 0
        row.audio_artifact_id, row.image_artifact_id = ids["audio"], ids["image"]
    return Owned(job_id=job.id, audio_id=ids["audio"], image_id=ids["image"])
