"""The Metrics page through AppTest: charts with data, an empty-state message without, admins see users."""

from __future__ import annotations

from core import rollup, stats
from core.jobs import submit_job
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user


def test_metrics_page_with_no_data_shows_empty_states(open_app, deps):
    alice = make_user(deps)
    at = open_app(alice, "pages/metrics.py")
    assert not at.exception
    assert any("No jobs in this time range" in i.value for i in at.info)
    assert any("all live data" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1, "only the live queue chart"


def test_metrics_page_charts_real_jobs_and_admins_see_jobs_per_user(open_app, deps, sim):
    alice = make_user(deps)
    bob = make_user(deps, "bob")
    root = make_user(deps, "root", admin=True)
    ok = submit_job(deps, alice, "a completed song")
    run_until_done(deps, [ok.id])
    sim_control(
        sim, "/_sim/faults", {"faults": [{"endpoint": "image_create", "kind": "status", "status": 400}]}
    )
    bad = submit_job(deps, bob, "bob's failing song")
    run_until_done(deps, [bad.id])

    at = open_app(alice, "pages/metrics.py")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 4  # live, success, steps, providers; alice has no failures
    assert any("No failures" in i.value for i in at.info)

    at = open_app(root, "pages/metrics.py")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 6
    at.selectbox(key="metrics.range").select("Last 7 days").run()
    assert not at.exception and len(at.get("plotly_chart")) == 6

    # Non-admins see only their own jobs: alice's success rate is 100 %, everyone's is 50 %.
    flt = stats.make_filter(deps.clock(), "Last 24 hours")
    assert stats.success_rate(deps, alice, flt)["jobs"].sum() == 1
    everyone = stats.success_rate(deps, root, flt)
    assert everyone["completed"].sum() == 1 and everyone["failed"].sum() == 1
    failures = stats.failures(deps, root, flt)
    assert list(failures["step"]) == ["render_cover"] and stats.failures(deps, alice, flt).empty
    assert set(stats.step_durations(deps, alice, flt)["step"]) == set(
        stats.step_durations(deps, root, flt)["step"]
    )
    assert set(stats.provider_latency(deps, root, flt)["provider"]) == {"OpenRouter", "Suno", "NanoBanana"}
    assert list(stats.jobs_per_user(deps, root, flt)["user"]) in (["alice", "bob"], ["bob", "alice"])
    assert stats.jobs_per_user(deps, alice, flt).empty

    # After a rollup refresh the page says how fresh the aggregates are and still charts everything.
    rollup.refresh(deps)
    at = open_app(root, "pages/metrics.py")
    assert not at.exception and len(at.get("plotly_chart")) == 6
    assert any("aggregates as of" in c.value for c in at.caption)
