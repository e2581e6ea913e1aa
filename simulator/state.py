"""SimState: every bit of simulator state (latency, tasks, counters, faults, request log, file cache)."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from typing import Any

from simulator.faults import FaultBook
from simulator.tasks import ImageTask, MusicTask

REQUEST_LOG_LIMIT = 2000
FILE_CACHE_LIMIT = 64


@dataclass
class Latency:
    llm: float = 0.2  # blocking sleep before each chat reply
    music: float = 6.0  # seconds from generate until SUCCESS (not a sleep)
    image: float = 3.0  # seconds from createTask until success (not a sleep)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Latency:
        env = dict(os.environ) if env is None else env
        base = cls()
        return cls(
            llm=float(env.get("SIM_LLM_LATENCY", base.llm)),
            music=float(env.get("SIM_MUSIC_LATENCY", base.music)),
            image=float(env.get("SIM_IMAGE_LATENCY", base.image)),
        )


class _BytesCache:
    """A bounded LRU of rendered files keyed by path."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._limit = limit

    def get(self, key: str) -> tuple[bytes, str] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, value: tuple[bytes, str]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class SimState:
    """Thread-safe container; handlers take ``state.lock`` around reads and writes of tasks."""

    def __init__(
        self, latency: Latency | None = None, public_base_url: str | None = None, render_variety: int = 0
    ) -> None:
        self.lock = threading.RLock()
        self.default_latency = latency or Latency()
        self.default_public_base_url = public_base_url
        # 0: every file is rendered for its own song. N > 0: at most N distinct renders per kind are made
        # and reused (benchmarks: a real provider renders on its own machines, not on ours).
        self.render_variety = render_variety
        self.faults = FaultBook()
        self._offset = 0.0
        self._reset_data()

    def _reset_data(self) -> None:
        self.latency = Latency(**asdict(self.default_latency))
        self.public_base_url = self.default_public_base_url
        self.music: dict[str, MusicTask] = {}
        self.images: dict[str, ImageTask] = {}
        self.submissions = {"llm": 0, "music": 0, "image": 0}
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self.models_by_endpoint: dict[str, list[str]] = {"chat": [], "suno_generate": [], "image_create": []}
        self.files = _BytesCache(FILE_CACHE_LIMIT)

    def reset(self) -> None:
        with self.lock:
            self._reset_data()
            self.faults.clear()
            self._offset = 0.0

    def now(self) -> float:
        """Monotonic clock used for task progress; /_sim/advance moves it forward."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds

    def count_submission(self, kind: str) -> None:
        with self.lock:
            self.submissions[kind] += 1

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)
            model = entry.get("model")
            if model and entry.get("endpoint") in self.models_by_endpoint:
                self.models_by_endpoint[entry["endpoint"]].append(model)

    def recent_requests(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            entries = list(self.requests)
        return entries[-limit:] if limit else entries

    def stats(self) -> dict[str, Any]:
        now = self.now()
        with self.lock:
            return {
                "submissions": dict(self.submissions),
                "requests": list(self.requests),
                "models_requested": list(self.models_by_endpoint["chat"]),
                "models_by_endpoint": {k: list(v) for k, v in self.models_by_endpoint.items()},
                "tasks": {
                    "music": {tid: t.summary(now) for tid, t in self.music.items()},
                    "image": {tid: t.summary(now) for tid, t in self.images.items()},
                },
                "faults": self.faults.active(),
                "faults_fired": list(self.faults.fired),
                "latency": asdict(self.latency),
            }
