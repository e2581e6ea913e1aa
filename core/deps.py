"""The one composition root: builds every engine, Redis client and httpx client the process uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import httpx
from redis import Redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.capacity import CapacityGate
from core.config import Settings
from core.db import make_engine, make_sessionmaker
from core.downloads import Downloader, DownloadPolicy
from core.providers.base import ImageProvider, LLMProvider, MusicProvider
from core.providers.http import make_http_client
from core.providers.nanobanana import NanoBananaClient
from core.providers.openrouter import OpenRouterClient
from core.providers.suno import SunoClient
from core.queueing import Queues, make_queues
from core.ratelimit import ProviderRateGate
from core.storage import LocalArtifactStore

if TYPE_CHECKING:
    from core.pipeline.steps import JobSnapshot


class StepGate(Protocol):
    """Decides whether a step may run now (rate limits, in-flight caps shared through Redis)."""

    def admit(self, deps: Dependencies, job: JobSnapshot, step: str) -> float | None:
        """None to run now, else the seconds after which to try the step again (never a failure)."""
        ...

    def release(self, deps: Dependencies, job: JobSnapshot, step: str, outcome: str) -> None:
        """Called after every step run with its outcome word (waiting, advanced, failed, ...)."""
        ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    redis: Redis
    queues: Queues
    llm: LLMProvider
    music: MusicProvider
    image: ImageProvider
    downloader: Downloader
    storage: LocalArtifactStore
    clock: Callable[[], datetime]
    gates: tuple[StepGate, ...] = ()
    http_clients: tuple[httpx.Client, ...] = ()

    def close(self) -> None:
        for client in self.http_clients:
            client.close()
        self.redis.close()
        self.engine.dispose()


def build_dependencies(
    settings: Settings,
    *,
    http_transport: httpx.BaseTransport | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Dependencies:
    """Nothing here opens a socket: engines, Redis and httpx clients all connect on first use."""
    engine = make_engine(settings.database_url)
    redis = Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )
    base_timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=settings.http_connect_timeout
    )
    llm_timeout = httpx.Timeout(
        settings.llm_read_timeout, connect=settings.http_connect_timeout, pool=settings.http_connect_timeout
    )
    llm_http = make_http_client(
        settings.openrouter_base_url,
        settings.openrouter_api_key,
        timeout=llm_timeout,
        transport=http_transport,
    )
    suno_http = make_http_client(
        settings.suno_base_url, settings.suno_api_key, timeout=base_timeout, transport=http_transport
    )
    image_http = make_http_client(
        settings.nanobanana_base_url,
        settings.nanobanana_api_key,
        timeout=base_timeout,
        transport=http_transport,
    )
    download_http = httpx.Client(
        timeout=httpx.Timeout(settings.download_timeout, connect=settings.http_connect_timeout),
        follow_redirects=False,
        transport=http_transport,
    )
    policy = DownloadPolicy(
        max_bytes=settings.download_max_bytes,
        timeout=settings.download_timeout,
        max_redirects=settings.download_max_redirects,
        allowed_hosts=settings.allowed_download_hosts,
    )
    return Dependencies(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        redis=redis,
        queues=make_queues(settings, redis),
        llm=OpenRouterClient(
            llm_http,
            app_url=settings.openrouter_app_url,
            app_title=settings.openrouter_app_title,
            total_timeout=settings.llm_read_timeout + settings.http_connect_timeout,
        ),
        music=SunoClient(
            suno_http,
            model=settings.suno_model,
            flavor=settings.suno_flavor,
            callback_url=settings.suno_callback_url,
            total_timeout=settings.http_total_timeout,
        ),
        image=NanoBananaClient(
            image_http, model=settings.nanobanana_model, total_timeout=settings.http_total_timeout
        ),
        downloader=Downloader(download_http, policy),
        storage=LocalArtifactStore(settings.artifact_dir),
        clock=clock,
        http_clients=(llm_http, suno_http, image_http, download_http),
        gates=(ProviderRateGate.from_settings(settings), CapacityGate.from_settings(settings)),
    )
