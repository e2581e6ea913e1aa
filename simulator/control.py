"""The /_sim control API: health, reset, latency config, faults, stats, request log, clock advance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from simulator.faults import FaultError, parse_fault
from simulator.state import SimState
from simulator.wsgi import BadJSON, Request, Response, json_response


def _bad(message: str) -> Response:
    return json_response({"ok": False, "error": message}, 400)


def health(_state: SimState, _req: Request) -> Response:
    return json_response({"ok": True})


def reset(state: SimState, _req: Request) -> Response:
    state.reset()
    return json_response({"ok": True})


def _config_view(state: SimState) -> dict[str, Any]:
    return {"ok": True, "latency": asdict(state.latency), "public_base_url": state.public_base_url}


def get_config(state: SimState, _req: Request) -> Response:
    return json_response(_config_view(state))


def set_config(state: SimState, req: Request) -> Response:
    body = req.json()
    latency = body.get("latency", {})
    if not isinstance(latency, dict):
        return _bad('latency must be an object like {"llm": 0.1, "music": 2, "image": 1}')
    for name, value in latency.items():
        if name not in ("llm", "music", "image"):
            return _bad(f"unknown latency {name!r}; use llm, music or image")
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            return _bad(f"latency.{name} must be a non-negative number of seconds")
    base = body.get("public_base_url", state.public_base_url)
    if base is not None and not isinstance(base, str):
        return _bad("public_base_url must be a string or null")
    with state.lock:
        for name, value in latency.items():
            setattr(state.latency, name, float(value))
        state.public_base_url = base.rstrip("/") if base else None
    return json_response(_config_view(state))


def list_faults(state: SimState, _req: Request) -> Response:
    return json_response({"ok": True, "faults": state.faults.active()})


def add_faults(state: SimState, req: Request) -> Response:
    body = req.json()
    raw = body.get("faults", [body])
    if not isinstance(raw, list):
        return _bad("faults must be an array")
    try:
        parsed = [parse_fault(item) for item in raw]
    except FaultError as exc:
        return _bad(str(exc))
    added = state.faults.add(parsed)
    return json_response({"ok": True, "added": [f.to_json() for f in added], "faults": state.faults.active()})


def clear_faults(state: SimState, _req: Request) -> Response:
    state.faults.clear()
    return json_response({"ok": True, "faults": []})


def stats(state: SimState, _req: Request) -> Response:
    return json_response(state.stats())


def requests(state: SimState, req: Request) -> Response:
    try:
        limit = int(req.query.get("limit") or 0)
    except ValueError:
        return _bad("limit must be an integer")
    return json_response({"requests": state.recent_requests(max(limit, 0) or None)})


def advance(state: SimState, req: Request) -> Response:
    seconds = req.json().get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return _bad("seconds must be a non-negative number")
    state.advance(float(seconds))
    return json_response({"ok": True})


ROUTES: dict[tuple[str, str], Callable[[SimState, Request], Response]] = {
    ("GET", "/_sim/health"): health,
    ("POST", "/_sim/reset"): reset,
    ("GET", "/_sim/config"): get_config,
    ("POST", "/_sim/config"): set_config,
    ("GET", "/_sim/faults"): list_faults,
    ("POST", "/_sim/faults"): add_faults,
    ("DELETE", "/_sim/faults"): clear_faults,
    ("GET", "/_sim/stats"): stats,
    ("GET", "/_sim/requests"): requests,
    ("POST", "/_sim/advance"): advance,
}


def handle(state: SimState, req: Request) -> Response:
    route = ROUTES.get((req.method, req.path.rstrip("/") or "/"))
    if route is None:
        known = sorted({path for _, path in ROUTES})
        return json_response({"ok": False, "error": f"unknown control route; try {', '.join(known)}"}, 404)
    try:
        return route(state, req)
    except BadJSON as exc:
        return _bad(str(exc))
