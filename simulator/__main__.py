"""`python -m simulator`: serve in the foreground, one JSON log line per request, stop on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from simulator.server import start_server
from simulator.state import Latency, SimState


def access_log(app: Any, stream: TextIO) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware writing {method, path, status, request_id, duration_ms} as one JSON line."""

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": None}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        def write() -> None:
            line = {
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": seen["status"],
                "request_id": environ.get("HTTP_X_REQUEST_ID"),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            stream.write(json.dumps(line) + "\n")
            stream.flush()

        try:
            result = app(environ, capture)
        except Exception:
            seen["status"] = seen["status"] or "dropped"
            write()
            raise
        write()
        return result

    return logged


def _parser(env: dict[str, str]) -> argparse.ArgumentParser:
    defaults = Latency.from_env(env)
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Songsmith provider simulator")
    parser.add_argument("--host", default=env.get("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("SIM_PORT", "8765")))
    parser.add_argument(
        "--llm-latency", type=float, default=defaults.llm, help="seconds slept per chat reply"
    )
    parser.add_argument(
        "--music-latency", type=float, default=defaults.music, help="seconds until Suno SUCCESS"
    )
    parser.add_argument(
        "--image-latency", type=float, default=defaults.image, help="seconds until image success"
    )
    parser.add_argument(
        "--public-url",
        default=env.get("SIM_PUBLIC_URL") or None,
        help="base for artifact URLs (default: from the request's Host header)",
    )
    parser.add_argument(
        "--render-variety",
        type=int,
        default=int(env.get("SIM_RENDER_VARIETY", "0")),
        help="render at most N distinct files per kind and reuse them (0: one per song; benchmarks)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser(dict(os.environ)).parse_args(argv)
    latency = Latency(llm=args.llm_latency, music=args.music_latency, image=args.image_latency)
    state = SimState(latency=latency, public_base_url=args.public_url, render_variety=args.render_variety)
    sim = start_server(args.host, args.port, state, wrap=lambda app: access_log(app, sys.stderr))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sys.stderr.write(json.dumps({"event": "listening", "url": sim.url, "latency": vars(args)}) + "\n")
    sys.stderr.flush()
    while not stop.wait(0.5):
        pass
    sim.stop()
    sys.stderr.write(json.dumps({"event": "stopped"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
