"""No user or model text reaches raw HTML: a static scan of app.py, pages/ and ui/, and the one
constant-template exception (the sign-in cookie script) encodes its value so it cannot break out."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ui.auth import _cookie_script

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]
RAW_HTML_CALLS = {"html", "iframe", "components"}  # st.html, st.iframe, st.components.v1.html
ALLOWED = {("ui/auth.py", "render_cookie", "iframe")}  # renders only _cookie_script's output


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root).as_posix()
    found: list[str] = []

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            where = node.name
        if isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html":
            found.append(f"{rel}:{node.value.lineno} unsafe_allow_html")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in RAW_HTML_CALLS and (rel, where, attr) not in ALLOWED:
                found.append(f"{rel}:{node.lineno} {attr}(...) in {where}")
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any("components" in n for n in names):
                found.append(f"{rel}:{node.lineno} imports streamlit components")
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(ast.parse(path.read_text()), "<module>")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_raw_html_outlet_takes_user_or_model_text(path, hostile):
    offences = _offences(path)
    hostile.held(f"raw HTML outlets in {path.name}: {offences}", not offences)


def test_the_scan_finds_an_outlet_when_one_is_there(tmp_path):
    bad = tmp_path / "pages" / "probe.py"
    bad.parent.mkdir()
    bad.write_text("import streamlit as st\nst.markdown(x, unsafe_allow_html=True)\nst.html(y)\n")
    assert len(_offences(bad, tmp_path)) == 2


def test_the_cookie_script_only_embeds_a_server_made_token_safely_encoded():
    source = (ROOT / "ui" / "auth.py").read_text()
    assert "st.iframe(script" in source and "state.COOKIE_SCRIPT" in source
    assert source.count("_cookie_script(") == 3  # the definition, sign-in (token) and sign-out ("")


@pytest.mark.parametrize(
    "value",
    ["</script><script>alert(1)</script>", '"; alert(1); "', "\\'; alert(1)//", "<!--", "\u2028x"],
)
def test_a_hostile_cookie_value_cannot_break_out_of_the_script(hostile, value):
    script = _cookie_script("songsmith_session", value, None, secure=True)
    body = script.removeprefix("<script>").removesuffix("</script>")
    bare = re.sub(r"\\.", "", body)  # escaped characters stay inside the JS string literal
    ok = "<" not in body and ">" not in body and bare.count('"') == 4 and "\u2028" not in body
    hostile.held(f"cookie value {value!r}", ok)
