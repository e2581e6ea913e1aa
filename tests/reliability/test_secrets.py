"""API keys never reach logs, user-facing errors, job rows, events or Redis, even when calls fail."""

from __future__ import annotations

import logging

from sqlalchemy import text

from core.jobs import get_job, submit_job
from core.logs import configure_logging, get_logger
from tests.conftest import override_deps, run_until_done, sim_control
from tests.factories import make_user

KEYS = {
    "openrouter_api_key": "sk-or-v1-SECRET-1111aaaa",
    "suno_api_key": "kie-SECRET-2222bbbb",
    "nanobanana_api_key": "kie-SECRET-3333cccc",
}


def test_failing_calls_leak_no_key_anywhere(deps, sim, capfd):
    with override_deps(deps, **KEYS) as d:
        configure_logging("test", level="DEBUG", json=True, secrets=d.settings.secrets)
        try:
            alice = make_user(d)
            faults = [
                {"endpoint": "chat", "kind": "status", "status": 401, "times": 1},
                {"endpoint": "suno_generate", "kind": "status", "status": 403, "times": 1},
                {"endpoint": "image_create", "kind": "body_code", "code": 401, "times": 1},
                {"endpoint": "audio_file", "kind": "status", "status": 404, "times": 1},
                {"endpoint": "chat", "kind": "status", "status": 503, "times": 2},
            ]
            sim_control(sim, "/_sim/faults", {"faults": faults})
            jobs = [submit_job(d, alice, f"A protest song number {i}") for i in range(5)]
            run_until_done(d, [j.id for j in jobs], timeout=60)
            messages = [get_job(d, alice, j.id).error_message or "" for j in jobs]
            assert any("API key" in m or "denied" in m for m in messages), messages
            get_logger("test").warning(
                "debug_dump",
                api_key=KEYS["suno_api_key"],
                headers={"Authorization": f"Bearer {KEYS['openrouter_api_key']}"},
                note=f"key is {KEYS['nanobanana_api_key']}",
            )
            logging.getLogger("httpx").warning("Authorization: Bearer %s", KEYS["openrouter_api_key"])
        finally:
            configure_logging("test", level="WARNING", json=True)
        captured = capfd.readouterr()
        logs = captured.out + captured.err
        assert "debug_dump" in logs
        with d.engine.connect() as conn:
            rows = " ".join(
                str(tuple(r))
                for table in ("jobs", "job_events", "users", "artifacts")
                for r in conn.execute(text(f"SELECT * FROM {table}"))
            )
        redis_dump = " ".join(str(d.redis.dump(k)) for k in d.redis.scan_iter(count=1000))
    for key in KEYS.values():
        assert key not in logs, "a key reached the logs"
        assert key not in rows, "a key reached the database"
        assert key not in redis_dump, "a key reached Redis"
        assert all(key not in m for m in messages), "a key reached a user-facing message"
