"""StepFailed: a step ends the job at a named step with a reason a user can act on."""

from __future__ import annotations


class StepFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
