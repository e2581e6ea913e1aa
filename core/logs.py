"""Structured JSON logging: correlation ids bound per job, secrets redacted by the setup itself."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, get_contextvars

_SECRET_KEYS = re.compile(r"(api[_-]?key|authorization|password|secret|token)", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-~+/=]+", re.IGNORECASE)
REDACTED = "[REDACTED]"


class Redactor:
    """Removes known secret values anywhere in an event, and values under secret-looking keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return _BEARER.sub(r"\1" + REDACTED, value)

    def value(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return REDACTED if _SECRET_KEYS.search(key) and key != "token_hash" else self.text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, v) for v in value]
        return value

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {k: self.value(k, v) for k, v in event_dict.items()}


def configure_logging(
    service: str,
    *,
    level: str = "INFO",
    json: bool = True,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library through one JSON renderer on stderr (or `stream`)."""
    redactor = Redactor(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=shared,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_service(service: str) -> Any:
    def processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return processor


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def current_correlation_id() -> str | None:
    return get_contextvars().get("correlation_id")


@contextmanager
def correlation(correlation_id: str | None, **extra: Any) -> Iterator[None]:
    with bound_contextvars(correlation_id=correlation_id, **extra):
        yield


@contextmanager
def user_action(action: str, **extra: Any) -> Iterator[str]:
    """A user acted (submit, batch, retry): bind a fresh correlation id for everything it causes."""
    correlation_id = uuid.uuid4().hex
    with bound_contextvars(correlation_id=correlation_id, action=action, **extra):
        yield correlation_id


__all__ = [
    "Redactor",
    "bind_contextvars",
    "configure_logging",
    "correlation",
    "current_correlation_id",
    "get_logger",
    "user_action",
]
