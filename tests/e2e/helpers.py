"""What a journey does with the page: sign in, submit, read Streamlit's grids and tables, wait for idle."""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Locator, Page, expect

MUSICCAPS = Path("/work/shared/data/musiccaps-public.csv")
FALLBACK_CAPTIONS = [
    "A mellow acoustic guitar ballad with soft female vocals and light brushed drums.",
    "An upbeat electronic dance track with a punchy kick, bright synth leads and a catchy hook.",
]
DURATION = re.compile(r"^\d+(\.\d+)? s$|^\d+ min \d+ s$")

# Reads every Streamlit dataframe (glide-data-grid keeps an accessible table of the visible cells next
# to its canvas) and every st.table into {headers, rows}; a timeline page rewrite may use either.
_READ_TABLES = """
() => {
  const out = [];
  const grids = document.querySelectorAll('[data-testid="stDataFrame"] table[role="grid"]');
  for (const t of grids) {
    const headers = [...t.querySelectorAll('th[role="columnheader"]')].map(h => h.innerText.trim());
    const rows = [...t.querySelectorAll('tbody tr')].map(
      r => [...r.querySelectorAll('td')].map(c => c.innerText.trim()));
    out.push({headers, rows, total: Number(t.getAttribute('aria-rowcount') || 1) - 1});
  }
  for (const t of document.querySelectorAll('[data-testid="stTable"] table')) {
    const headers = [...t.querySelectorAll('thead th')].map(h => h.innerText.trim());
    const rows = [...t.querySelectorAll('tbody tr')].map(
      r => [...r.querySelectorAll('th, td')].map(c => c.innerText.trim()));
    if (rows.length && rows[0].length === headers.length + 1) rows.forEach(r => r.shift());  // index
    out.push({headers, rows, total: rows.length});
  }
  return out;
}
"""


def captions(n: int) -> list[str]:
    """The first n MusicCaps captions (the real data our users bring), or a couple of stand-ins."""
    if not MUSICCAPS.exists():
        return (FALLBACK_CAPTIONS * n)[:n]
    with MUSICCAPS.open(newline="", encoding="utf-8") as f:
        found = [row["caption"].strip() for row in csv.DictReader(f) if row.get("caption", "").strip()]
    return [c[:900] for c in found[:n]]


def wait_idle(page: Page, timeout: float = 30_000) -> None:
    """Streamlit shows its status widget while a script run is in progress."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)


def main(page: Page) -> Locator:
    return page.locator('[data-testid="stMain"]')


def login_if_asked(page: Page, username: str, password: str) -> bool:
    """Sign in through the form when this browser session shows it; False when already signed in."""
    username_box = page.get_by_label("Username")
    signed_in = page.get_by_text("Signed in as")
    expect(username_box.or_(signed_in).first).to_be_visible(timeout=30_000)
    wait_idle(page)
    if not username_box.is_visible():
        return False
    dismiss_dialog(page)
    username_box.fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
    wait_idle(page)
    return True


def dismiss_dialog(page: Page) -> None:
    """Close a Streamlit dialog (a deep link before sign-in: "Page not found"); it makes the page inert."""
    dialog = page.get_by_role("dialog")
    if dialog.count() and dialog.first.is_visible():
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)


def login(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url)
    login_if_asked(page, username, password)


def open_url(page: Page, base_url: str, path: str, username: str, password: str) -> None:
    """Open a URL as a user would type it: a new browser session; sign in on that page load if asked.

    Signing in on the login page lands on the main page, so the URL is then opened again inside the
    signed-in session (history.pushState + popstate is how Streamlit follows browser navigation).
    """
    page.goto(base_url + path)
    if login_if_asked(page, username, password):
        navigate_in_session(page, path)


def navigate_in_session(page: Page, path: str) -> None:
    page.evaluate(
        "p => { history.pushState({}, '', p); window.dispatchEvent(new PopStateEvent('popstate')); }", path
    )
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    wait_idle(page)


def nav_link(page: Page, title: str) -> Locator:
    return page.locator('[data-testid="stSidebarNav"] a').filter(has=page.get_by_text(title, exact=True))


def go_to(page: Page, title: str) -> None:
    """Open a page through the sidebar (client-side: the Streamlit session and sign-in stay)."""
    nav_link(page, title).click()
    wait_idle(page)


def submit_concept(page: Page, concept: str) -> str:
    """Submit one concept on the Submit page and open its job; returns the job id from the link."""
    go_to(page, "Submit")
    box = page.get_by_label("Concept")
    box.fill(concept)
    page.get_by_role("button", name="Create song").click()
    expect(main(page).get_by_text("Job created")).to_be_visible()
    link = page.get_by_role("link", name="Open the job you just created")
    job_id = parse_qs(urlparse(link.get_attribute("href") or "").query)["id"][0]
    link.click()
    expect(page).to_have_url(re.compile(rf"/job\?id={job_id}"))
    return job_id


def status_badge(page: Page, status: str) -> Locator:
    return main(page).locator(".stMarkdownBadge").filter(has_text=re.compile(rf"\b{status}$", re.IGNORECASE))


def wait_for_status(page: Page, status: str, timeout: float = 60_000) -> None:
    """The status badge on Job detail, which its fragment refreshes without a page reload."""
    expect(status_badge(page, status).first).to_be_visible(timeout=timeout)


def tables(page: Page) -> list[dict]:
    return page.evaluate(_READ_TABLES)


def table_with(
    page: Page,
    *columns: str,
    until: Callable[[list[dict[str, str]]], bool] | None = None,
    timeout: float = 15.0,
) -> list[dict[str, str]]:
    """Rows ({column: text}) of the first grid or table with all these columns, once `until` holds.

    The grid's accessible table catches up with the canvas a moment after a rerun, so this polls.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = tables(page)
        for t in seen:
            if all(c in t["headers"] for c in columns):
                rows = [dict(zip(t["headers"], row, strict=False)) for row in t["rows"]]
                if len(rows) == t["total"] and (until is None or until(rows)):
                    return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"no table with columns {columns} as expected; saw {seen}")
        page.wait_for_timeout(250)


def mark_document(page: Page) -> None:
    """A flag on window that a full page reload would wipe: proves that updates came without one."""
    page.evaluate("() => { window.__e2eNoReload = true; }")


def document_kept(page: Page) -> bool:
    return bool(page.evaluate("() => window.__e2eNoReload === true"))


def audio_duration(page: Page) -> float:
    """Load the player's source and return its duration in seconds (0 when it does not play)."""
    return float(
        page.locator('[data-testid="stAudio"]').first.evaluate(
            """a => new Promise(resolve => {
                 const done = () => resolve(Number.isFinite(a.duration) ? a.duration : 0);
                 if (a.readyState >= 1) return done();
                 a.addEventListener('loadedmetadata', done, {once: true});
                 a.addEventListener('error', () => resolve(0), {once: true});
                 a.preload = 'metadata';
                 a.load();
               })"""
        )
    )


def image_natural_width(page: Page) -> int:
    img = page.locator('[data-testid="stImage"] img').first
    img.wait_for()
    return int(
        img.evaluate(
            """i => i.complete && i.naturalWidth ? i.naturalWidth : new Promise(resolve => {
                 i.addEventListener('load', () => resolve(i.naturalWidth), {once: true});
                 i.addEventListener('error', () => resolve(0), {once: true});
               })"""
        )
    )


def feature_page(page: Page, *titles: str, issue: str) -> None:
    """Open the first of these sidebar pages that exists, or skip: the feature has not landed yet."""
    for title in titles:
        if nav_link(page, title).count():
            go_to(page, title)
            return
    pytest.skip(f"waits for {issue}: no {' / '.join(titles)} page in the navigation")


def metric_value(page: Page, label: str) -> str:
    metric = (
        main(page)
        .locator('[data-testid="stMetric"]')
        .filter(has=page.locator('[data-testid="stMetricLabel"]').get_by_text(label, exact=True))
    )
    return metric.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def grid_total_rows(page: Page, column: str, timeout: float = 15.0) -> int:
    """The row count a dataframe reports (aria-rowcount), though only visible rows are in the DOM."""
    deadline = time.monotonic() + timeout
    while True:
        for t in tables(page):
            if column in t["headers"]:
                return int(t["total"])
        if time.monotonic() > deadline:
            raise AssertionError(f"no grid with a {column!r} column")
        page.wait_for_timeout(250)


def plotly_points(page: Page) -> list[int]:
    """For each Plotly chart on the page: how many data points its traces hold (x, y, values...)."""
    # Plotly's bundle loads lazily: wait until every chart element holds a drawn graph div.
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(
             c => c.querySelector('.js-plotly-plot') && c.querySelector('.js-plotly-plot').data)""",
        timeout=30_000,
    )
    # calcdata holds the drawn points per trace (data may hold base64 typed arrays).
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')].map(gd =>
             (gd.calcdata || []).reduce((n, trace) => n + (trace || []).length, 0))"""
    )


def pick_selectbox_option(page: Page, label: str, avoid: str) -> str:
    """Open a selectbox and choose its first option that is not `avoid`; returns the option's text."""
    box = main(page).locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True))
    box.first.locator('[role="combobox"], input').first.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    for i in range(options.count()):
        text = options.nth(i).inner_text().strip()
        if text and text != avoid:
            options.nth(i).click()
            wait_idle(page)
            return text
    raise AssertionError(f"{label}: no option other than {avoid!r}")
