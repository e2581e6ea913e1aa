"""Fault rules: their JSON schema, validation, and the thread-safe book that fires and consumes them.

Rules (also in simulator/README.md):
- At most one fault fires per request: the first one added whose ``endpoint`` matches and whose
  optional ``match`` substring occurs in ``"<path>?<query>\\n<body>"``. Firing decrements ``times``
  (``-1`` = forever); a fault at 0 is removed.
- ``task_*`` kinds on ``suno_generate`` / ``image_create`` mark the next accepted task(s) (``times``
  counts tasks). On ``suno_poll`` / ``image_poll`` they attach to the task being polled (use ``match``
  with the task id to pick one). ``task_unknown_status`` on a poll endpoint only masks the status of
  that poll (``times`` counts polls); on a create endpoint the task reports it for its first ``polls``
  polls (default 2).
- ``after_processing: true`` on ``status`` / ``body_code`` / ``drop`` / ``malformed_json`` runs the real
  handler first (the task is created and counted as paid) and only then replaces the reply.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

try:  # Under httpx.WSGITransport the exception reaches the client, so make it a transport error there.
    from httpx import RemoteProtocolError as _DropBase
except ImportError:  # pragma: no cover - httpx is in requirements.txt
    _DropBase = ConnectionResetError  # type: ignore[assignment,misc]


class DropConnection(_DropBase):  # type: ignore[misc,valid-type]
    """Raised by the app to make the server close the socket without sending any response."""

    def __init__(self, message: str = "simulator dropped the connection") -> None:
        super().__init__(message)


ENDPOINTS = (
    "chat",
    "models",
    "suno_generate",
    "suno_poll",
    "image_create",
    "image_poll",
    "audio_file",
    "image_file",
)
GENERIC_KINDS = frozenset({"status", "slow", "drop", "malformed_json"})
LLM_KINDS = frozenset(
    {
        "llm_not_json",
        "llm_prose_around_json",
        "llm_missing_fields",
        "llm_zero_options",
        "llm_wrong_types",
        "llm_error_in_200",
        "llm_empty",
    }
)
TASK_KINDS = frozenset(
    {"task_fail", "task_sensitive", "task_never_finishes", "task_empty_result", "task_unknown_status"}
)
FILE_KINDS = frozenset({"oversized", "wrong_content_type", "corrupt"})
TASK_ENDPOINTS = frozenset({"suno_generate", "suno_poll", "image_create", "image_poll"})
FILE_ENDPOINTS = frozenset({"audio_file", "image_file"})
AFTER_PROCESSING_KINDS = frozenset({"status", "body_code", "drop", "malformed_json"})


def kinds_for(endpoint: str) -> frozenset[str]:
    kinds = set(GENERIC_KINDS)
    if endpoint == "chat":
        kinds |= LLM_KINDS
    if endpoint in TASK_ENDPOINTS:
        kinds |= TASK_KINDS | {"body_code"}
    if endpoint in FILE_ENDPOINTS:
        kinds |= FILE_KINDS
    return frozenset(kinds)


class FaultError(ValueError):
    """A fault rule that does not fit the schema."""


@dataclass
class Fault:
    endpoint: str
    kind: str
    times: int = 1
    match: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    id: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "times": self.times,
            "match": self.match,
            **self.params,
        }


def parse_fault(raw: Any) -> Fault:
    if not isinstance(raw, dict):
        raise FaultError("each fault must be a JSON object")
    endpoint, kind = raw.get("endpoint"), raw.get("kind")
    if endpoint not in ENDPOINTS:
        raise FaultError(f"endpoint must be one of {', '.join(ENDPOINTS)}; got {endpoint!r}")
    allowed = kinds_for(endpoint)
    if kind not in allowed:
        raise FaultError(f"kind {kind!r} is not valid for {endpoint}; valid: {', '.join(sorted(allowed))}")
    times = raw.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times == 0 or times < -1:
        raise FaultError("times must be a positive integer or -1 (forever)")
    match = raw.get("match")
    if match is not None and not isinstance(match, str):
        raise FaultError("match must be a string")
    params = {k: v for k, v in raw.items() if k not in {"endpoint", "kind", "times", "match", "id"}}
    _check_params(kind, params)
    return Fault(endpoint=endpoint, kind=kind, times=times, match=match, params=params)


def _check_params(kind: str, params: dict[str, Any]) -> None:
    def number(name: str, required: bool) -> None:
        value = params.get(name)
        if value is None and not required:
            return
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise FaultError(f"{kind} needs a non-negative number {name!r}")

    if kind == "status":
        status = params.get("status")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise FaultError("status needs an HTTP 'status' between 100 and 599")
        number("retry_after", required=False)
    elif kind == "body_code":
        if not isinstance(params.get("code"), int):
            raise FaultError("body_code needs an integer 'code'")
    elif kind == "slow":
        number("seconds", required=True)
    elif kind == "oversized":
        number("size_mb", required=False)


class FaultBook:
    """Active faults in insertion order; all methods are thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self.fired: list[dict[str, Any]] = []

    def add(self, faults: list[Fault]) -> list[Fault]:
        with self._lock:
            for fault in faults:
                fault.id = self._next_id
                self._next_id += 1
                self._faults.append(fault)
            return list(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.fired.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def take(self, endpoint: str, haystack: str) -> Fault | None:
        """Fire (and consume one use of) the first matching fault, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint != endpoint or (fault.match and fault.match not in haystack):
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                self.fired.append({"id": fault.id, "endpoint": endpoint, "kind": fault.kind})
                del self.fired[:-200]
                return fault
        return None
