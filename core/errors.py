"""Errors the services raise for a user to read (pages show them with st.error, the CLI prints them)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a refused action; the message is safe and meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(UserError):
    """The object does not exist *or belongs to someone else*: both look the same from outside."""

    def __init__(self, what: str = "Job") -> None:
        super().__init__(f"{what} not found.")
