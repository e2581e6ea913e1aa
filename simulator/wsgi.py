"""Minimal WSGI request/response types shared by the route handlers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs


class BadJSON(ValueError):
    """The request body is not the JSON object the endpoint needs."""


@dataclass
class Request:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    base_url: str
    environ: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_environ(cls, environ: dict[str, Any], public_base_url: str | None = None) -> Request:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        host = (
            headers.get("host")
            or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        )
        base = public_base_url or f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
        path = environ.get("PATH_INFO", "/") or "/"
        return cls(
            environ["REQUEST_METHOD"].upper(),
            path,
            environ.get("QUERY_STRING", ""),
            headers,
            body,
            base.rstrip("/"),
            environ,
        )

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}

    @property
    def match_text(self) -> str:
        """What a fault's ``match`` substring is searched in."""
        return f"{self.path}?{self.query_string}\n{self.body.decode('utf-8', 'replace')}"

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadJSON(f"Request body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadJSON("Request body must be a JSON object")
        return data

    def bearer(self) -> str:
        auth = self.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    length: int | None = None

    def status_line(self) -> str:
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            return f"{self.status} Unknown"

    def header_list(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", self.content_type), *self.headers]
        if isinstance(self.body, bytes):
            headers.append(("Content-Length", str(len(self.body))))
        elif self.length is not None:
            headers.append(("Content-Length", str(self.length)))
        return headers

    def chunks(self) -> Iterable[bytes]:
        return [self.body] if isinstance(self.body, bytes) else self.body


def json_response(payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), headers=list(headers or []))
