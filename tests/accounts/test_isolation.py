"""A user reaches only their own jobs, files and batches; admins reach all. Enforced in core services.

To cover a new service that takes the id of something a user owns, add one row to BY_ID: a label and
a call `(deps, actor, owned) -> result`. Every row is checked for a stranger (NotFound, no data), for
the owner and for an admin (allowed), and for ids that do not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from core.auth import list_users
from core.deps import Dependencies
from core.errors import NotFound
from core.jobs import get_job, list_jobs, read_artifact
from core.users import Actor
from tests.accounts.helpers import SECRET_CONCEPT, SECRET_LYRICS, Owned, owned_job
from tests.factories import make_user

Call = Callable[[Dependencies, Actor, Owned], Any]

BY_ID: list[tuple[str, Call]] = [
    ("get_job", lambda d, a, o: get_job(d, a, o.job_id)),
    ("get_job by str id", lambda d, a, o: get_job(d, a, str(o.job_id))),
    ("read_artifact audio", lambda d, a, o: read_artifact(d, a, o.audio_id)),
    ("read_artifact image", lambda d, a, o: read_artifact(d, a, o.image_id)),
    # retry_job, cancel_job, get_batch, results_csv, ... : add a row here as they land.
]
MISSING = Owned(job_id=uuid.uuid4(), audio_id=987654, image_id=987655)


@pytest.fixture
def world(deps, sim):
    alice, mallory = make_user(deps, "alice"), make_user(deps, "mallory")
    admin = make_user(deps, "root", admin=True)
    return {"alice": alice, "mallory": mallory, "admin": admin, "owned": owned_job(deps, alice)}


@pytest.mark.parametrize(("label", "call"), BY_ID, ids=[r[0] for r in BY_ID])
def test_a_stranger_gets_not_found_and_no_data(deps, world, label, call):
    with pytest.raises(NotFound) as err:
        call(deps, world["mallory"], world["owned"])
    assert err.value.message in ("Job not found.", "File not found.", "Batch not found."), label
    for secret in (SECRET_CONCEPT, SECRET_LYRICS, str(world["owned"].job_id), "alice"):
        assert secret not in err.value.message


@pytest.mark.parametrize(("label", "call"), BY_ID, ids=[r[0] for r in BY_ID])
def test_the_owner_and_an_admin_are_allowed(deps, world, label, call):
    for who in ("alice", "admin"):
        assert call(deps, world[who], world["owned"]) is not None, (label, who)


@pytest.mark.parametrize(("label", "call"), BY_ID, ids=[r[0] for r in BY_ID])
def test_ids_that_do_not_exist_look_exactly_like_someone_elses(deps, world, label, call):
    with pytest.raises(NotFound) as missing:
        call(deps, world["alice"], MISSING)
    with pytest.raises(NotFound) as foreign:
        call(deps, world["mallory"], world["owned"])
    assert missing.value.message == foreign.value.message, label


@pytest.mark.parametrize("bad", ["not-a-uuid", "", "../../etc/passwd", "1 OR 1=1"])
def test_malformed_job_ids_are_not_found(deps, world, bad):
    with pytest.raises(NotFound):
        get_job(deps, world["alice"], bad)


def test_list_jobs_shows_only_the_users_own_even_with_an_owner_filter(deps, world):
    mine = owned_job(deps, world["mallory"])
    page = list_jobs(deps, world["mallory"])
    assert [j.id for j in page.items] == [mine.job_id]
    sneaky = list_jobs(deps, world["mallory"], owner_id=world["alice"].id)
    assert [j.id for j in sneaky.items] == [mine.job_id]
    assert all(j.concept != SECRET_CONCEPT or j.owner == "mallory" for j in sneaky.items)


def test_admins_list_everyone_and_can_filter_by_owner(deps, world):
    theirs = owned_job(deps, world["mallory"])
    everyone = list_jobs(deps, world["admin"])
    assert {j.id for j in everyone.items} == {world["owned"].job_id, theirs.job_id}
    only_alice = list_jobs(deps, world["admin"], owner_id=world["alice"].id)
    assert [(j.id, j.owner) for j in only_alice.items] == [(world["owned"].job_id, "alice")]


def test_the_user_list_is_everyone_for_admins_and_only_yourself_otherwise(deps, world):
    assert [u.username for u in list_users(deps, world["admin"])] == ["alice", "mallory", "root"]
    assert [u.username for u in list_users(deps, world["mallory"])] == ["mallory"]
    assert not hasattr(list_users(deps, world["admin"])[0], "password_hash")
