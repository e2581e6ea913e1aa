"""`python -m core.cli batch FILE`: the same service as the page, printed as text or JSON."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from core.cli import main
from core.models import Job


def test_cli_batch_creates_jobs_and_prints_json(app_env, deps, tmp_path, capsys):
    path = tmp_path / "songs.csv"
    path.write_text("id;Caption\n1;A sea shanty\n2;\n3;A desert blues\n", encoding="utf-8")
    assert main(["--user", "carol", "batch", str(path), "--name", "CLI batch"]) == 1
    assert "row 3: empty" in capsys.readouterr().err
    assert main(["--user", "carol", "batch", str(path), "--skip-problems", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["total"] == 2 and made["counts"]["pending"] == 2
    with deps.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 2
    assert deps.queues.batch.count == 2
    assert main(["--user", "carol", "batch", str(path), "--column", "nope"]) == 1
    assert "no column named 'nope'" in capsys.readouterr().err
