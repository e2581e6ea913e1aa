"""The provider exception tree: the runner decides retry or fail from the class alone."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call did not give a usable result.

    `message` is safe to show a user: it never contains keys, auth headers or whole payloads.
    """

    retryable: bool = False

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class RetryableProviderError(ProviderError):
    """Transient: connection errors, timeouts, 408/429/5xx, the providers' own busy codes."""

    retryable = True


class AmbiguousSubmitError(RetryableProviderError):
    """A paid submit whose outcome is unknown (read timeout after sending, 5xx): it may have been
    accepted, so the contract allows at most one delayed resubmit."""


class PermanentProviderError(ProviderError):
    """Do not retry as-is: bad key, no credits, rejected input, refusal, a failed task."""


class ContentRejectedError(PermanentProviderError):
    """The provider refused the content (sensitive words, moderation): the user must edit it."""


class InvalidOutputError(PermanentProviderError):
    """The provider answered but the payload does not fit the contract (LLM JSON, empty results)."""
