"""The benchmark report: sections collected during one run, printed and written to bench/report.md."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# BENCH_REPORT writes elsewhere: a partial run (`python -m bench throughput`) must not replace the
# committed report of a whole run.
REPORT_PATH = Path(os.environ.get("BENCH_REPORT") or Path(__file__).resolve().parent / "report.md")


def machine() -> str:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
    )


@dataclass
class Report:
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def section(self, title: str) -> list[str]:
        lines: list[str] = []
        self.sections.append((title, lines))
        return lines

    def line(self, lines: list[str], text: str) -> None:
        lines.append(text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def add(self, title: str, body: str) -> None:
        """A whole section at once (printed too)."""
        lines = self.section(title)
        for text in body.splitlines():
            self.line(lines, text)

    def render(self) -> str:
        out = [
            "# Songsmith benchmark report",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {machine()}.",
            "Every figure is printed beside a baseline measured in the same run.",
            "",
        ]
        for title, lines in self.sections:
            out += [f"## {title}", "", *lines, ""]
        return "\n".join(out)

    def write(self) -> Path:
        REPORT_PATH.write_text(self.render())
        return REPORT_PATH
