"""`python -m core.cli`: automation entry points over the same services and read models as the pages."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from core.config import ConfigError, load_settings
from core.deps import Dependencies, build_dependencies
from core.errors import UserError
from core.logs import configure_logging
from core.models import COMPLETED, TERMINAL_STATUSES
from core.users import Actor, actor_for, ensure_user, find_user
from core.views import JobDetail, all_schemas

Command = Callable[[Dependencies, argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(args: argparse.Namespace, model: Any, human: str) -> None:
    out(model.model_dump_json(indent=2) if getattr(args, "json", False) else human)


def cli_actor(deps: Dependencies, username: str) -> Actor:
    """The CLI is an operator tool: it acts as the named user, creating a plain analyst if missing."""
    with deps.sessionmaker.begin() as s:
        user = find_user(s, username) or ensure_user(s, username)
        return actor_for(user)


def describe(job: JobDetail) -> str:
    lines = [f"job {job.id}: {job.status}" + (f" at {job.current_step}" if job.current_step else "")]
    if job.title:
        lines.append(f"  title: {job.title}")
    if job.error_message:
        lines.append(f"  failed at {job.error_step}: {job.error_message}")
    for run in job.steps:
        took = f"{run.duration_seconds:.1f}s" if run.duration_seconds is not None else "running"
        lines.append(f"  [{run.status:>9}] {run.label:<22} {took:>9}  {run.service or ''}")
    if job.audio:
        lines.append(f"  audio: {job.audio.path} ({job.audio.size_bytes:,} bytes)")
    if job.image:
        lines.append(f"  cover: {job.image.path} ({job.image.size_bytes:,} bytes)")
    return "\n".join(lines)


@command("init-db")
def cmd_init_db(deps: Dependencies, _args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    upgrade(deps.settings.database_url)
    out("database is up to date")
    return 0


@command("schema")
def cmd_schema(_deps: Dependencies, _args: argparse.Namespace) -> int:
    out(json.dumps(all_schemas(), indent=2))
    return 0


@command("submit")
def cmd_submit(deps: Dependencies, args: argparse.Namespace) -> int:
    from core.jobs import get_job, submit_job

    actor = cli_actor(deps, args.user)
    summary = submit_job(deps, actor, args.concept)
    if not args.wait:
        emit(args, summary, f"submitted job {summary.id}")
        return 0
    deadline = time.monotonic() + args.wait
    job = get_job(deps, actor, summary.id)
    while job.status not in TERMINAL_STATUSES and time.monotonic() < deadline:
        time.sleep(0.5)
        job = get_job(deps, actor, summary.id)
    emit(args, job, describe(job))
    if job.status not in TERMINAL_STATUSES:
        sys.stderr.write(f"job {job.id} still {job.status} after {args.wait}s\n")
    return 0 if job.status == COMPLETED else 1


@command("status")
def cmd_status(deps: Dependencies, args: argparse.Namespace) -> int:
    from core.jobs import get_job

    job = get_job(deps, cli_actor(deps, args.user), args.job_id)
    emit(args, job, describe(job))
    return 0


@command("run")
def cmd_run(deps: Dependencies, args: argparse.Namespace) -> int:
    """The whole product on this machine: migrations, first admin, Redis if needed, simulator, worker, app."""
    from core.stack import run_product

    return run_product(deps, app_port=args.port, open_browser=not args.no_browser, say=out)


def _read_password(name: str) -> str:
    """From stdin when it is not a terminal (one line), else from a double prompt."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UserError("The two passwords differ; nothing was changed.")
        return password
    return sys.stdin.readline().rstrip("\r\n")


@command("create-user")
def cmd_create_user(deps: Dependencies, args: argparse.Namespace) -> int:
    from core.auth import create_user

    actor = create_user(deps, args.name, _read_password(args.name), admin=args.admin)
    out(f"created {actor.role} {actor.username!r} (id {actor.id})")
    return 0


@command("set-password")
def cmd_set_password(deps: Dependencies, args: argparse.Namespace) -> int:
    from core.auth import set_password

    actor = set_password(deps, args.name, _read_password(args.name))
    out(f"new password set for {actor.username!r}; their sessions were signed out")
    return 0


@command("retry")
def cmd_retry(deps: Dependencies, args: argparse.Namespace) -> int:
    """Exit 0 when a new attempt started, 1 when nothing changed (the message says why)."""
    from core.lifecycle import retry_job

    outcome = retry_job(deps, cli_actor(deps, args.user), args.job_id, from_start=args.from_start)
    emit(args, outcome, outcome.message)
    return 0 if outcome.retried else 1


@command("cancel")
def cmd_cancel(deps: Dependencies, args: argparse.Namespace) -> int:
    from core.lifecycle import cancel_job

    out(cancel_job(deps, cli_actor(deps, args.user), args.job_id))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Songsmith automation")
    parser.add_argument("--user", default="demo", help="act as this user (default: demo)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="apply database migrations")
    sub.add_parser("schema", help="print the JSON Schema of the read models")
    p = sub.add_parser("submit", help="submit one concept")
    p.add_argument("concept")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="block until the job ends")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("status", help="show one job")
    p.add_argument("job_id")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("retry", help="retry a failed or cancelled job (from the failed step by default)")
    p.add_argument("job_id")
    p.add_argument("--from-start", action="store_true", help="run every step again")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("cancel", help="cancel a pending or running job")
    p.add_argument("job_id")
    p = sub.add_parser("create-user", help="create an account (password from stdin or a prompt)")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="an admin sees every user's jobs")
    p = sub.add_parser("set-password", help="reset a user's password (from stdin or a prompt)")
    p.add_argument("name")
    p = sub.add_parser("run", help="run the whole product (simulator, worker, app)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--no-browser", action="store_true")
    for extend in _PARSER_HOOKS:
        extend(sub)
    return parser


_PARSER_HOOKS: list[Callable[[Any], None]] = []


@command("batch")
def cmd_batch(deps: Dependencies, args: argparse.Namespace) -> int:
    """Create a batch from a CSV/XLSX file (or `-` for one concept per line on stdin)."""
    from pathlib import Path

    from core import batches

    if args.file == "-":
        table, filename = batches.read_pasted(deps, sys.stdin.read()), None
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"No such file: {args.file}")
        filename = path.name
        table = batches.read_upload(deps, path.read_bytes(), filename)
    rows = batches.rows_of(table, args.column if args.column else table.suggested)
    checked = batches.preview(deps, rows)
    for problem in checked.problems[:20]:
        sys.stderr.write(f"row {problem.row}: {problem.kind}: {problem.message}\n")
    if len(checked.problems) > 20:
        sys.stderr.write(f"... and {len(checked.problems) - 20} more problem rows\n")
    made = batches.create_batch(
        deps,
        cli_actor(deps, args.user),
        rows,
        name=args.name,
        skip_problems=args.skip_problems,
        source_filename=filename,
    )
    emit(args, made, f"batch {made.id}: {made.total:,} jobs queued ({len(checked.problems):,} rows skipped)")
    return 0


def _batch_parser(sub: Any) -> None:
    p = sub.add_parser("batch", help="create a batch of jobs from a CSV/XLSX file")
    p.add_argument("file", help="CSV/TSV/XLSX file, or - for one concept per line on stdin")
    p.add_argument("--column", help="the concept column's header name (default: detected)")
    p.add_argument("--name", help="batch name (default: the file name and time)")
    p.add_argument("--skip-problems", action="store_true", help="skip empty/too long/duplicate rows")
    p.add_argument("--json", action="store_true")


_PARSER_HOOKS.append(_batch_parser)


@command("refresh-rollups")
def cmd_refresh_rollups(deps: Dependencies, args: argparse.Namespace) -> int:
    """Build the Metrics page's rollups now: after an upgrade onto a large database, rather than wait
    for worker.cron's first pass while the page reads the raw tables."""
    from core import rollup

    report = rollup.refresh(deps)
    kind = "full build" if report.full else "refresh"
    if args.json:
        out(json.dumps(dataclasses.asdict(report)))
    elif report.skipped:
        out("another process is refreshing the rollups; nothing done")
    else:
        out(f"rollups: {kind} of {report.hours:,} hours in {report.seconds:.1f} s")
    return 0


def _refresh_parser(sub: Any) -> None:
    p = sub.add_parser("refresh-rollups", help="build or refresh the Metrics page's rollups now")
    p.add_argument("--json", action="store_true")


_PARSER_HOOKS.append(_refresh_parser)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging("cli", level="WARNING", json=settings.log_json, secrets=settings.secrets)
    deps = build_dependencies(settings)
    try:
        return _COMMANDS[args.command](deps, args)
    except UserError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 1
    finally:
        deps.close()


if __name__ == "__main__":
    raise SystemExit(main())
