"""`python -m core.metrics_server`: serves /metrics on METRICS_PORT, summing every process's samples."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from core.config import ConfigError, load_settings
from core.deps import build_dependencies
from core.logs import configure_logging, get_logger
from core.metrics import enable_multiprocess, serve

log = get_logger("songsmith.metrics")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.metrics_server", description=__doc__)
    parser.add_argument("--host", default=None, help="bind address (default METRICS_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default METRICS_PORT)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging("metrics", level=settings.log_level, json=settings.log_json, secrets=settings.secrets)
    enable_multiprocess(settings.metrics_dir)
    deps = build_dependencies(settings)
    host = args.host or settings.metrics_host
    port = settings.metrics_port if args.port is None else args.port
    server, _thread = serve(deps, host, port, settings.metrics_dir)
    log.info("metrics_serving", host=host, port=server.server_port, directory=str(settings.metrics_dir))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    deps.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
