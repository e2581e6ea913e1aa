"""Hostile text in concepts, batch cells and LLM replies: refused with a clear message, or stored as-is
and rendered as text (every markdown/HTML metacharacter escaped), with every length bounded.

LLM output is driven at the transport seam: chat completions answer with hostile JSON, every other
request (Suno, NanoBanana, files) goes to the real simulator over HTTP.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from sqlalchemy import func, select

from core.batches import create_batch, preview, read_upload, results_csv, rows_of
from core.deps import build_dependencies
from core.jobs import get_job, submit_job, validate_concept
from core.models import Job
from core.pipeline.steps import SUNO_LYRICS_MAX, SUNO_STYLE_MAX, SUNO_TITLE_MAX
from tests.conftest import run_until_done
from tests.factories import make_user
from ui.widgets import plain
from worker.tasks import use_dependencies

HTML_TITLE = "<img src=x onerror=alert(1)>[x](javascript:alert(1))"
HOSTILE_MODEL = "<script>alert('m')</script>![](http://evil/p.png)"
ACCEPTED = [
    "<script>alert('owned')</script> a jazz ballad",
    '<img src=x onerror="alert(1)"> about lighthouses',
    "[click me](javascript:alert(document.cookie)) folk song",
    "![](http://evil.example/pixel.png) tracking pixel ballad",
    "<iframe src=//evil></iframe> **bold** # heading `code` $x^2$ :red[alert]",
    '=HYPERLINK("http://evil","x") spreadsheet song',
    "مرحبا a bilingual song with Arabic script (no override)",
]
REFUSED = [
    ("NUL byte", "a song\x00 about nothing", "U+0000"),
    ("RTL override", "a song about \u202egnp.exe", "U+202E"),
    ("RTL isolate", "a song \u2067hidden\u2069", "U+2067"),
    ("zero-width space", "a\u200bsong", "U+200B"),
    ("escape sequence", "a song \x1b[31mred", "U+001B"),
    ("bell", "ding\x07", "U+0007"),
]
LIVE_MARKUP = re.compile(r"<\w|\]\(|!\[|javascript:", re.I)


def unescaped(body: str) -> str:
    """The body with every backslash-escaped character removed: what markdown would still interpret."""
    return re.sub(r"\\.", "", body)


@pytest.mark.parametrize(("label", "text", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_control_and_invisible_characters_are_refused_with_a_clear_message(deps, hostile, label, text, code):
    err = hostile.refused(label, lambda: submit_job(deps, make_user(deps), text), match=code)
    assert "remove them" in err.message
    with deps.sessionmaker() as s:
        hostile.held(f"{label}: nothing stored", s.scalar(select(func.count()).select_from(Job)) == 0)


@pytest.mark.parametrize("size", [2001, 10 * 1024 * 1024])
def test_over_length_concepts_are_refused_naming_the_limit(deps, hostile, size):
    text = "la " * (size // 3 + 1)
    err = hostile.refused(
        f"{size}-char concept", lambda: validate_concept(text, deps.settings.concept_max_chars)
    )
    assert f"the limit is {deps.settings.concept_max_chars:,}" in err.message


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_hostile_concepts_are_stored_exactly_as_typed(deps, hostile, text):
    alice = make_user(deps)
    job = submit_job(deps, alice, text)
    hostile.held(f"stored as-is: {text[:30]}", get_job(deps, alice, job.id).concept == text)


def _csv(cells: list[str]) -> bytes:
    lines = ["concept"] + ['"' + c.replace('"', '""') + '"' for c in cells]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def test_hostile_csv_cells_get_row_problems_and_the_rest_are_kept_as_is(deps, hostile):
    big = "x" * (deps.settings.concept_max_chars + 1)
    cells = [*ACCEPTED, "nul \x00 cell", "rtl \u202e cell", big]
    table = read_upload(deps, _csv(cells), "hostile.csv")
    checked = preview(deps, rows_of(table, "concept"))
    kinds = {p.row: p.kind for p in checked.problems}
    n = len(ACCEPTED)
    hostile.held("NUL cell", kinds.get(n + 2) == "control_chars")
    hostile.held("RTL override cell", kinds.get(n + 3) == "control_chars")
    hostile.held("over-length cell", kinds.get(n + 4) == "too_long")
    assert all(len(p.message) < 300 for p in checked.problems)  # a 10 MB cell is not echoed back
    assert checked.concepts == ACCEPTED
    alice = make_user(deps)
    batch = create_batch(deps, alice, rows_of(table, "concept"), skip_problems=True)
    with deps.sessionmaker() as s:
        stored = set(s.scalars(select(Job.concept).where(Job.batch_id == batch.id)))
    hostile.held("batch cells stored as-is", stored == set(ACCEPTED))
    csv_text = results_csv(deps, alice, batch.id).decode("utf-8-sig")
    hostile.held("formula neutralised in results CSV", "'=HYPERLINK(" in csv_text)
    assert "\n=HYPERLINK" not in csv_text and ",=HYPERLINK" not in csv_text


@pytest.mark.parametrize("quoted", [True, False])
def test_a_10_mb_line_in_an_upload_is_refused_with_a_clear_message(deps, hostile, quoted):
    line = "x" * (10 * 1024 * 1024)
    data = ("concept\n" + (f'"{line}"' if quoted else line) + "\nok song\n").encode()
    err = hostile.refused(f"10 MB line (quoted={quoted})", lambda: read_upload(deps, data, "long.csv"))
    assert "longer than" in err.message and len(err.message) < 300


def test_a_10_mb_pasted_line_is_a_row_problem(deps, hostile):
    from core.batches import read_pasted

    table = read_pasted(deps, "ok song\n" + "y" * (10 * 1024 * 1024))
    checked = preview(deps, rows_of(table, 0))
    hostile.held("10 MB pasted line", [p.kind for p in checked.problems] == ["too_long"])
    assert checked.concepts == ["ok song"] and all(len(p.message) < 300 for p in checked.problems)


def test_invalid_utf8_and_nul_bytes_in_an_upload_never_crash(deps, hostile):
    data = b"concept\n\xff\xfe\xfa broken bytes song\nok song\n\x00\x00\n"
    table = read_upload(deps, data, "bytes.csv")
    checked = preview(deps, rows_of(table, 0))
    hostile.held("invalid UTF-8 decoded without a crash", "ok song" in checked.concepts)
    hostile.held("NUL row flagged", any(p.kind == "control_chars" for p in checked.problems))


# --- LLM output ---------------------------------------------------------------------------------------


class HostileChat(httpx.BaseTransport):
    """Chat completions answer with hostile JSON; everything else goes to the real simulator."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/chat/completions"):
            return self.real.handle_request(request)
        body = json.loads(request.content)
        text = json.dumps(body["messages"])
        if "FAILME" in text:
            content = "<script>not json</script>"
        elif body["response_format"]["json_schema"]["name"] == "image_prompt":
            content = json.dumps({"prompt": "<script>alert('cover')</script> " + "p" * 4000})
        else:
            option = {
                "title": HTML_TITLE + " " + "t" * 500,
                "style": "<b>jazz</b>, " + "s" * 1000,
                "lyrics": "[Verse]\n<script>alert(1)</script>\n![](http://evil/p.png)\n" + "l" * 10_000,
            }
            content = json.dumps({"options": [option, option, option]})
        reply = {"id": "gen-1", "model": HOSTILE_MODEL, "choices": [{"message": {"content": content}}]}
        return httpx.Response(200, json=reply)

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def hostile_llm(deps, settings):
    other = build_dependencies(settings, http_transport=HostileChat())
    use_dependencies(other)
    yield other
    use_dependencies(deps)
    other.close()


def test_hostile_llm_output_is_truncated_for_suno_and_stored_as_text(hostile_llm, hostile):
    alice = make_user(hostile_llm)
    job = submit_job(hostile_llm, alice, "a jazz ballad about the sea")
    assert run_until_done(hostile_llm, [job.id], timeout=30)[str(job.id)] == "completed"
    detail = get_job(hostile_llm, alice, job.id)
    chosen = detail.chosen_option
    hostile.held("title bounded", len(chosen["title"]) == SUNO_TITLE_MAX)
    hostile.held("style bounded", len(chosen["style"]) <= SUNO_STYLE_MAX)
    hostile.held("lyrics bounded", len(chosen["lyrics"]) <= SUNO_LYRICS_MAX)
    hostile.held("title stored as-is", chosen["title"].startswith(HTML_TITLE))
    hostile.held("model name stored as text", detail.llm_model_used == HOSTILE_MODEL)


def _bodies(at) -> list[str]:
    kinds = ("title", "header", "subheader", "caption", "markdown", "error", "warning", "info", "success")
    return [str(el.value) for kind in kinds for el in getattr(at, kind)]


def test_the_job_page_renders_hostile_concept_and_llm_text_escaped(hostile_llm, open_app, hostile):
    alice = make_user(hostile_llm)
    concept = ACCEPTED[0] + " " + ACCEPTED[2] + " " + ACCEPTED[3]
    done = submit_job(hostile_llm, alice, concept)
    failed = submit_job(hostile_llm, alice, "FAILME <img src=x onerror=alert(2)> [y](javascript:alert(2))")
    statuses = run_until_done(hostile_llm, [done.id, failed.id], timeout=30)
    assert statuses == {str(done.id): "completed", str(failed.id): "failed"}

    at = open_app(alice, "pages/job.py", query={"id": str(done.id)})
    assert not at.exception
    title = at.title[0].value
    hostile.held("title escaped", title == plain(get_job(hostile_llm, alice, done.id).title))
    hostile.held("title has no live markup", not LIVE_MARKUP.search(unescaped(title)))
    assert r"\<img src\=x onerror\=alert\(1\)\>\[x\]\(javascript\:alert\(1\)\)" in title
    concept_caption = next(c.value for c in at.caption if c.value.startswith("Concept:"))
    assert r"\<script\>" in concept_caption and r"\!\[\]\(http\:" in concept_caption
    hostile.held("concept caption escaped", not LIVE_MARKUP.search(unescaped(concept_caption)))
    for body in _bodies(at):
        hostile.held(f"job page markdown {body[:40]!r}", not LIVE_MARKUP.search(unescaped(body)))

    at = open_app(alice, "pages/job.py", query={"id": str(failed.id)})
    assert not at.exception
    alert = next(e.value for e in at.error if "Failed at" in e.value)
    assert r"The model \<script\>alert\('m'\)\</script\>\!\[\]\(http\://evil/p\.png\)" in alert, alert
    for body in _bodies(at):
        hostile.held(f"failed job page markdown {body[:40]!r}", not LIVE_MARKUP.search(unescaped(body)))
