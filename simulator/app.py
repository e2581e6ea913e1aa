"""The WSGI app: routing, bearer auth, request logging, and the provider-independent fault kinds."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from simulator import control, files, kie, openrouter
from simulator.faults import AFTER_PROCESSING_KINDS, DropConnection, Fault
from simulator.state import SimState
from simulator.wsgi import BadJSON, Request, Response, json_response

log = logging.getLogger("simulator")

Handler = Callable[[SimState, Request, Fault | None], Response]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Route:
    endpoint: str  # the fault endpoint name (see simulator.faults.ENDPOINTS)
    provider: str  # "openrouter" | "kie" | "files": picks the error shape
    auth: bool
    handler: Handler


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/api/v1/chat/completions"): Route("chat", "openrouter", True, openrouter.chat),
    ("GET", "/api/v1/models"): Route("models", "openrouter", False, openrouter.models),
    ("GET", "/api/v1/key"): Route("key", "openrouter", True, openrouter.key),
    ("POST", "/api/v1/generate"): Route("suno_generate", "kie", True, kie.suno_generate),
    ("GET", "/api/v1/generate/record-info"): Route("suno_poll", "kie", True, kie.suno_poll),
    ("POST", "/api/v1/jobs/createTask"): Route("image_create", "kie", True, kie.image_create),
    ("GET", "/api/v1/jobs/recordInfo"): Route("image_poll", "kie", True, kie.image_poll),
}
PREFIX_ROUTES: tuple[tuple[str, str, Route], ...] = (
    ("GET", "/api/v1/model/", Route("models", "openrouter", False, openrouter.model)),
    ("GET", "/files/audio/", Route("audio_file", "files", False, files.serve)),
    ("GET", "/files/image/", Route("image_file", "files", False, files.serve)),
)
GENERIC_FAULTS = AFTER_PROCESSING_KINDS | {"slow", "body_code"}


def _route(method: str, path: str) -> Route | Response:
    route = ROUTES.get((method, path))
    if route is None:
        route = next((r for m, prefix, r in PREFIX_ROUTES if m == method and path.startswith(prefix)), None)
    if route is not None:
        return route
    if any(p == path for _, p in ROUTES) or any(path.startswith(p) for _, p, _ in PREFIX_ROUTES):
        return json_response({"error": {"code": 405, "message": f"Method {method} not allowed"}}, 405)
    return json_response(
        {"error": {"code": 404, "message": f"Not found: {path}"}, "code": 404, "msg": "Not found"}, 404
    )


def error_response(
    provider: str, status: int, message: str | None = None, retry_after: Any = None
) -> Response:
    headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
    if provider == "openrouter":
        if status == 429:
            reset_ms = int((time.time() + float(retry_after or 60)) * 1000)
            headers += [
                ("X-RateLimit-Limit", "20"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", str(reset_ms)),
            ]
        return openrouter.error(status, message, headers)
    if provider == "kie":
        return kie.body_error(status, message, http_status=status, headers=headers)
    text = (message or f"Simulated HTTP {status}").encode()
    return Response(status, text, content_type="text/plain; charset=utf-8", headers=headers)


def _fault_response(route: Route, fault: Fault) -> Response:
    if fault.kind == "drop":
        raise DropConnection(f"simulated drop on {route.endpoint}")
    if fault.kind == "malformed_json":
        return Response(
            200, b'{"id": "gen-sim", "choices": [{"message": {"content": "{\\"opti', "application/json"
        )
    if fault.kind == "body_code":
        return kie.body_error(int(fault.get("code")), fault.get("msg"))
    return error_response(
        route.provider, int(fault.get("status")), fault.get("message"), fault.get("retry_after")
    )


def _requested_model(req: Request) -> str | None:
    if req.method != "POST" or not req.body:
        return None
    try:
        model = json.loads(req.body).get("model")
    except (ValueError, AttributeError):
        return None
    return model if isinstance(model, str) else None


def _dispatch(state: SimState, req: Request, route: Route, entry: dict[str, Any]) -> Response:
    if route.auth and not req.bearer():
        return error_response(route.provider, 401, "Missing Authorization: Bearer <key>")
    fault = state.faults.take(route.endpoint, req.match_text)
    if fault:
        entry["fault"] = fault.kind
    if fault and fault.kind == "slow":
        time.sleep(float(fault.get("seconds", 0)))
    elif fault and fault.kind in GENERIC_FAULTS and not fault.get("after_processing"):
        return _fault_response(route, fault)
    try:
        response = route.handler(state, req, fault if fault and fault.kind not in GENERIC_FAULTS else None)
    except BadJSON as exc:
        return error_response(route.provider, 400, str(exc))
    if fault and fault.kind in AFTER_PROCESSING_KINDS and fault.get("after_processing"):
        return _fault_response(route, fault)
    return response


def make_app(state: SimState) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        req = Request.from_environ(environ, state.public_base_url)
        if req.path.startswith("/_sim/") or req.path == "/_sim":
            response = control.handle(state, req)
        else:
            response = _provider(state, req)
        start_response(response.status_line(), response.header_list())
        return response.chunks()

    return app


def _provider(state: SimState, req: Request) -> Response:
    started = time.perf_counter()
    route = _route(req.method, req.path)
    entry: dict[str, Any] = {
        "time": time.time(),
        "method": req.method,
        "path": req.path,
        "query": req.query_string,
        "request_id": req.headers.get("x-request-id"),
        "endpoint": route.endpoint if isinstance(route, Route) else None,
        "model": _requested_model(req),
        "status": None,
        "duration_ms": None,
        "fault": None,
    }
    state.log_request(entry)
    try:
        response = route if isinstance(route, Response) else _dispatch(state, req, route, entry)
    except DropConnection:
        entry["status"] = "dropped"
        raise
    except Exception:
        log.exception("simulator handler failed for %s %s", req.method, req.path)
        provider = route.provider if isinstance(route, Route) else "files"
        response = error_response(provider, 500, "Simulator internal error")
    entry["status"] = response.status
    entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return response
