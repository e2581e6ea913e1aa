"""New batch and Batches pages through AppTest: upload → preview → create, paste, detail actions."""

from __future__ import annotations

from sqlalchemy import func, select

from core import batches
from core.models import Batch, Job
from tests.factories import make_user


def job_count(deps) -> int:
    with deps.sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(Job)) or 0


def test_upload_preview_create(open_app, deps):
    alice = make_user(deps)
    at = open_app(alice, "pages/batch.py")
    assert not at.exception
    data = "id;Prompt;notes\n1;A jazz ballad;x\n2;;y\n3;A polka, loud;z\n4;a jazz ballad;w\n".encode("cp1252")
    at.file_uploader(key="batch.file").set_value(("songs.csv", data, "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="batch.column").value == 1  # the Prompt column is pre-selected
    assert [m.value for m in at.metric] == ["4", "2", "2"]
    assert "row(s) have problems" in at.warning[0].value
    problems = at.dataframe[1].value
    assert list(problems["Row"]) == [3, 5] and list(problems["Problem"]) == ["empty", "duplicate"]
    at.radio(key="batch.skip").set_value("I will fix the file first").run()
    assert at.button(key="batch.create").disabled
    at.radio(key="batch.skip").set_value("Skip them and create the rest").run()
    at.button(key="batch.create").click().run()
    assert not at.exception
    assert "Batch created: 2 jobs queued" in at.success[0].value
    with deps.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 1
        concepts = list(s.scalars(select(Job.concept).order_by(Job.created_at)))
    assert concepts == ["A jazz ballad", "A polka, loud"]
    assert deps.queues.batch.count == len(concepts)


def test_paste_lines_creates_a_batch(open_app, deps):
    alice = make_user(deps)
    at = open_app(alice, "pages/batch.py")
    at.radio(key="batch.source").set_value("Paste lines").run()
    at.text_area(key="batch.paste").input("first song\n\nsecond song\n").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["2", "2", "0"]
    at.button(key="batch.create").click().run()
    assert not at.exception and at.success
    assert job_count(deps) == 2 and deps.queues.batch.count == 2


def test_a_bad_file_gets_a_clear_message_and_no_traceback(open_app, deps):
    alice = make_user(deps)
    at = open_app(alice, "pages/batch.py")
    at.file_uploader(key="batch.file").set_value(("book.xlsx", b"PK\x03\x04garbage", "application/zip")).run()
    assert not at.exception
    assert "damaged" in at.error[0].value
    assert job_count(deps) == 0


def test_batches_list_and_detail_actions(open_app, deps):
    alice, bob = make_user(deps, "alice"), make_user(deps, "bob")
    made = batches.create_batch(deps, alice, ["one", "two", "three"], name="My three")
    batches.create_batch(deps, bob, ["bob's"], name="Bob's batch")
    at = open_app(alice, "pages/batches.py")
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["Name"]) == ["My three"] and list(frame["Jobs"]) == ["0 / 3"]
    at = open_app(alice, "pages/batches.py", query={"id": str(made.id)})
    assert not at.exception
    assert at.title[0].value == "My three"
    assert at.button(key="batches.retry").disabled
    at.button(key="batches.cancel").click().run()
    assert not at.exception
    assert batches.get_batch(deps, alice, made.id).counts["cancelled"] == 3
    other = open_app(bob, "pages/batches.py", query={"id": str(made.id)})
    assert not other.exception and "not found" in other.error[0].value.lower()
