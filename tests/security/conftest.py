"""Security fixtures: the hostile-input tally every test adds to, printed once at the end of the run.

Each hostile input a test tries is counted with `hostile.held(label, ok)` or `hostile.refused(...)`;
one that got through is named in the summary and fails the run, even if its test was deselected
from asserting (the tally is the figure the issue asks for: N tried, 0 through).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.errors import UserError
from tests.ui.conftest import app_env, open_app  # noqa: F401


@dataclass
class Tally:
    tried: int = 0
    through: list[str] = field(default_factory=list)

    def held(self, label: str, ok: bool) -> None:
        """One hostile input tried; `ok` says the defence held. Fails the test at once if not."""
        self.tried += 1
        if not ok:
            self.through.append(label)
        assert ok, f"hostile input got through: {label}"

    def refused(
        self,
        label: str,
        fn: Callable[[], Any],
        *,
        exc: type[BaseException] | tuple[type[BaseException], ...] = UserError,
        match: str | None = None,
    ) -> BaseException:
        """Calls fn, which must raise `exc` (with `match` in its message); returns the exception."""
        try:
            fn()
        except exc as err:
            text = getattr(err, "message", None) or str(err)
            self.held(f"{label} (message {text!r})", match is None or match in text)
            return err
        self.held(f"{label} (accepted)", False)
        raise AssertionError("unreachable")


_TALLY = Tally()


@pytest.fixture(scope="session")
def hostile() -> Tally:
    return _TALLY


def pytest_terminal_summary(terminalreporter) -> None:
    if not _TALLY.tried:
        return  # no security test ran
    line = f"security: {_TALLY.tried} hostile inputs tried, {len(_TALLY.through)} got through"
    terminalreporter.write_sep("=", "security figures")
    terminalreporter.write_line(line)
    for label in _TALLY.through:
        terminalreporter.write_line(f"  got through: {label}")


def pytest_sessionfinish(session) -> None:
    if _TALLY.through and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
