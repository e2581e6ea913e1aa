"""Submit, Jobs and Job detail through Streamlit's AppTest, asserting on the database too."""

from __future__ import annotations

from sqlalchemy import select

from core.jobs import submit_job
from core.models import Job
from tests.conftest import run_until_done
from tests.factories import make_user


def test_logged_out_sessions_only_see_the_sign_in_page(open_app):
    at = open_app()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert any("Sign in" in t.value for t in at.title) or at.text_input


def test_sign_in_with_the_right_password_opens_the_app(open_app, deps):
    make_user(deps, "bob", password="right-password")
    at = open_app()
    at.text_input(key="login.username").input("BOB")
    at.text_input(key="login.password").input("right-password")
    at.button[0].click().run()
    assert not at.exception
    assert any("Signed in as **bob**" in c.value for c in at.sidebar.caption)


def test_a_wrong_password_gets_one_generic_message(open_app, deps):
    make_user(deps, "bob", password="right-password")
    at = open_app()
    at.text_input(key="login.username").input("bob")
    at.text_input(key="login.password").input("wrong-password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong username or password."]


def test_submit_creates_one_job_and_rejects_bad_input(open_app, deps):
    alice = make_user(deps)
    at = open_app(alice, "pages/submit.py")
    at.text_area(key="submit.concept").input("   ")
    at.button[0].click().run()
    assert not at.exception
    assert "empty" in at.error[0].value
    at.text_area(key="submit.concept").input("A brass-band march about a lost umbrella")
    at.button[0].click().run()
    assert not at.exception
    assert at.success and "Job created" in at.success[0].value
    with deps.sessionmaker() as s:
        jobs = s.scalars(select(Job)).all()
    assert [j.concept for j in jobs] == ["A brass-band march about a lost umbrella"]
    assert at.text_area(key="submit.concept").value == "A brass-band march about a lost umbrella"
    assert deps.queues.interactive.count == 1


def test_jobs_page_lists_the_users_jobs_newest_first(open_app, deps, sim):
    alice = make_user(deps)
    bob = make_user(deps, "bob")
    submit_job(deps, alice, "first song")
    submit_job(deps, alice, "second song")
    submit_job(deps, bob, "bob's private song")
    at = open_app(alice, "pages/jobs.py")
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["Concept"]) == ["second song", "first song"]


def test_job_detail_shows_player_cover_lyrics_and_timeline(open_app, deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, "A rainy-night jazz ballad about a lighthouse keeper")
    run_until_done(deps, [job.id])
    at = open_app(alice, "pages/job.py", query={"id": str(job.id)})
    at.query_params["id"] = str(job.id)
    at.run()
    assert not at.exception
    assert at.get("audio"), "the audio player is shown"
    assert at.get("image"), "the cover is shown"
    timeline = at.dataframe[0].value
    assert len(timeline) == 6 and set(timeline["Status"]) == {"succeeded"}
    assert any("Correlation id" in c.value for c in at.caption)


def test_another_users_job_is_not_found(open_app, deps, sim):
    alice = make_user(deps)
    bob = make_user(deps, "bob")
    job = submit_job(deps, alice, "alice's secret song")
    at = open_app(bob, "pages/job.py")
    at.query_params["id"] = str(job.id)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Job not found."]
    assert "alice's secret song" not in str(at.main)


def test_a_double_click_makes_one_job_and_new_text_makes_another(open_app, deps):
    alice = make_user(deps)
    at = open_app(alice, "pages/submit.py")
    at.text_area(key="submit.concept").input("A sea shanty about a lost sock")
    at.button[0].click().run()
    at.button[0].click().run()  # the second click of a double click, same text
    assert not at.exception
    assert "Already created from this text" in at.success[0].value
    with deps.sessionmaker() as s:
        assert len(s.scalars(select(Job)).all()) == 1
    at.text_area(key="submit.concept").input("A sea shanty about a found sock")
    at.button[0].click().run()
    at.button(key="submit.another").click().run()
    at.button[0].click().run()  # the same text again, on purpose
    with deps.sessionmaker() as s:
        assert sorted(j.concept for j in s.scalars(select(Job))) == [
            "A sea shanty about a found sock",
            "A sea shanty about a found sock",
            "A sea shanty about a lost sock",
        ]
