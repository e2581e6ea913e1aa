"""Importing every module opens no sockets, and pages import no infrastructure packages."""

import ast
import importlib
import pkgutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_importing_core_worker_and_simulator_opens_no_socket(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("a module opened a socket at import time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for package in ("core", "worker", "simulator"):
        mod = importlib.import_module(package)
        for info in pkgutil.walk_packages(mod.__path__, prefix=f"{package}."):
            if info.name.endswith("__main__") or ".migrations" in info.name:
                continue
            importlib.import_module(info.name)


@pytest.mark.parametrize("page", sorted((ROOT / "pages").glob("*.py")), ids=lambda p: p.name)
def test_pages_stay_thin(page):
    tree = ast.parse(page.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"sqlalchemy", "httpx", "redis", "rq", "psycopg"}
    assert len(page.read_text().splitlines()) < 150


def test_core_never_imports_streamlit():
    for path in (ROOT / "core").rglob("*.py"):
        assert "import streamlit" not in path.read_text(), path
