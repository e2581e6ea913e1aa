"""Settings from the environment and an optional .env; one clear line per bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SIMULATOR_URL = "http://127.0.0.1:8765"


class ConfigError(Exception):
    """Raised with a one-line, user-facing message naming the offending variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///./data/songsmith.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    artifact_dir: Path = Path("./data/artifacts")
    queue_prefix: str = "songsmith"

    # Providers: the defaults point at the local simulator; set real base URLs and keys to go live.
    openrouter_base_url: str = f"{SIMULATOR_URL}/api/v1"
    openrouter_api_key: SecretStr = SecretStr("sim-openrouter-key")
    openrouter_default_model: str = "openai/gpt-4o-mini"
    openrouter_fallback_models: str = (
        "openai/gpt-4o-mini,openai/gpt-4o,anthropic/claude-3.5-sonnet,google/gemini-2.5-flash"
    )
    openrouter_app_url: str = "https://github.com/songsmith"
    openrouter_app_title: str = "Songsmith"
    suno_base_url: str = SIMULATOR_URL
    suno_api_key: SecretStr = SecretStr("sim-suno-key")
    suno_model: str = "V4_5"
    suno_flavor: Literal["kie", "sunoapi"] = "kie"
    suno_callback_url: str = "https://example.invalid/suno-callback"
    nanobanana_base_url: str = SIMULATOR_URL
    nanobanana_api_key: SecretStr = SecretStr("sim-nanobanana-key")
    nanobanana_model: str = "google/nano-banana"

    # Timeouts (seconds) for every provider call.
    http_connect_timeout: float = Field(10.0, gt=0)
    http_read_timeout: float = Field(60.0, gt=0)
    http_total_timeout: float = Field(120.0, gt=0)
    llm_read_timeout: float = Field(120.0, gt=0)

    # Remote task polling: first check after `poll_initial`, growing by `poll_growth` to `poll_max`.
    poll_initial_seconds: float = Field(2.0, ge=0)
    poll_growth: float = Field(1.5, ge=1)
    poll_max_seconds: float = Field(15.0, gt=0)
    music_deadline_seconds: float = Field(600.0, gt=0)
    image_deadline_seconds: float = Field(300.0, gt=0)

    # Retries of transient provider errors, per step run.
    step_retry_budget: int = Field(4, ge=0)
    retry_base_seconds: float = Field(2.0, ge=0)
    retry_max_seconds: float = Field(60.0, gt=0)

    # Downloads of provider artifact URLs.
    download_max_bytes: int = Field(50 * 1024 * 1024, gt=0)
    download_timeout: float = Field(60.0, gt=0)
    download_max_redirects: int = Field(3, ge=0)
    download_allowed_hosts: str = "127.0.0.1:8765,localhost:8765"

    # Jobs and RQ.
    concept_max_chars: int = Field(2000, gt=0)
    job_timeout_seconds: int = Field(300, gt=0)
    lease_seconds: int = Field(360, gt=0)
    result_ttl_seconds: int = Field(600, ge=0)
    # Crash safety: the reconciler's cadence, how long a step may go without a worker heartbeat.
    reconcile_interval_seconds: int = Field(15, gt=0)
    reconcile_grace_seconds: float = Field(10.0, ge=0)
    worker_heartbeat_seconds: int = Field(5, gt=0)
    worker_class: Literal["inline", "fork"] = "inline"
    abandoned_after_seconds: float = Field(30.0, gt=0)
    scheduled_overdue_seconds: float = Field(20.0, gt=0)
    failure_ttl_seconds: int = Field(86400, ge=0)

    # Batches: limits of one upload, and provider capacity shared by all workers through Redis.
    batch_max_rows: int = Field(10000, gt=0)
    batch_max_file_bytes: int = Field(20 * 1024 * 1024, gt=0)
    batch_max_xlsx_uncompressed_bytes: int = Field(100 * 1024 * 1024, gt=0)
    music_max_in_flight: int = Field(10, gt=0)
    image_max_in_flight: int = Field(10, gt=0)
    capacity_retry_seconds: float = Field(2.0, gt=0)

    # Accounts and sign-in (core/auth.py, core/sessions.py, core/login_limits.py).
    auth_mode: Literal["password", "header"] = "password"
    auth_header: str = "X-Forwarded-User"
    session_ttl_hours: float = Field(72.0, gt=0)
    session_cookie_name: str = Field("songsmith_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_cookie_secure: bool = False
    login_max_failures: int = Field(5, gt=0)
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_memory_kib: int = Field(65536, ge=8)
    password_hash_parallelism: int = Field(4, ge=1)
    login_failure_window_seconds: int = Field(300, gt=0)

    # The Settings page's model list (core/model_catalog.py).
    models_cache_ttl_seconds: int = Field(600, ge=0)
    models_fallback_ttl_seconds: int = Field(30, ge=0)

    # Embedded simulator (used by `make run`).
    simulator_host: str = "127.0.0.1"
    simulator_port: int = Field(8765, gt=0, lt=65536)

    # Rate limits (core/ratelimit.py, moving windows in Redis; 0 turns a limit off).
    # Sized so one maximum batch (BATCH_MAX_ROWS) fits in a minute; a batch counts all its jobs.
    jobs_per_minute: int = Field(10000, ge=0)
    jobs_per_day: int = Field(50000, ge=0)
    openrouter_rpm: int = Field(600, ge=0)
    suno_requests_per_10s: int = Field(20, ge=0)
    nanobanana_requests_per_10s: int = Field(20, ge=0)

    # Prometheus metrics (core/metrics.py; `python -m core.metrics_server` serves /metrics).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, gt=0, lt=65536)
    metrics_dir: Path = Path("./data/metrics")
    # Metric rollups (core/rollup.py): refreshed by `python -m worker.cron` every interval; each refresh
    # looks back `overlap` before the previous one started, for writes committed late (long transactions)
    # or stamped by a host whose clock runs behind.
    rollup_interval_seconds: int = Field(60, gt=0)
    rollup_overlap_seconds: float = Field(300.0, ge=0)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("openrouter_base_url", "suno_base_url", "nanobanana_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def allowed_download_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.download_allowed_hosts.split(",") if h.strip())

    @property
    def fallback_models(self) -> list[str]:
        return [m.strip() for m in self.openrouter_fallback_models.split(",") if m.strip()]

    @property
    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor and the leak tests."""
        keys = (self.openrouter_api_key, self.suno_api_key, self.nanobanana_api_key)
        return [k.get_secret_value() for k in keys if k.get_secret_value()]

    def fingerprint(self) -> str:
        """A stable, secret-free key for caching one Dependencies per configuration."""
        data = self.model_dump(
            mode="json", exclude={"openrouter_api_key", "suno_api_key", "nanobanana_api_key"}
        )
        return repr(sorted(data.items()))


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's report into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "configuration"
        raise ConfigError(f"Invalid configuration: {name}: {err['msg']}") from None
