import pytest

from core.config import ConfigError, load_settings


def test_defaults_point_at_sqlite_and_the_simulator(monkeypatch):
    for var in ("DATABASE_URL", "REDIS_URL", "SUNO_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(_env_file=None)
    assert s.database_url.startswith("sqlite:///")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.suno_base_url == "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL"),
        ("SUNO_BASE_URL", "ftp://x", "SUNO_BASE_URL"),
        ("POLL_MAX_SECONDS", "soon", "POLL_MAX_SECONDS"),
        ("STEP_RETRY_BUDGET", "-1", "STEP_RETRY_BUDGET"),
    ],
)
def test_a_bad_value_gives_one_line_naming_the_variable(monkeypatch, var, value, named):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    message = str(err.value)
    assert named in message
    assert "\n" not in message


def test_postgres_urls_are_normalised_to_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert load_settings(_env_file=None).database_url == "postgresql+psycopg://u@h/db"


def test_cli_reports_config_errors_without_a_traceback(monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("REDIS_URL", "nonsense")
    assert main(["status", "x"]) == 2
    err = capsys.readouterr().err
    assert "REDIS_URL" in err and "Traceback" not in err


def test_the_fingerprint_holds_no_secrets():
    s = load_settings(_env_file=None, openrouter_api_key="sk-very-secret-1")
    assert "sk-very-secret-1" not in s.fingerprint()
    assert "sk-very-secret-1" in s.secrets
