"""`python -m bench [NAME ...]`: run every bench/*.py module that has run(report), then write the report."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench
from bench.report import Report

SKIP = {"__main__", "report", "env", "noop"}


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name not in SKIP)
    report = Report()
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "run"):
            continue
        sys.stdout.write(f"\n=== bench.{name} ===\n")
        started = time.monotonic()
        try:
            module.run(report)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            report.line(report.section(f"{name}: FAILED"), f"`{type(exc).__name__}: {exc}`")
        sys.stdout.write(f"(bench.{name} took {time.monotonic() - started:.0f} s)\n")
    path = report.write()
    sys.stdout.write(f"\nReport written to {path}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
