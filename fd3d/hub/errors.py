"""`HubError`, and failures of other libraries put into one line of a `HubError`'s message."""

from __future__ import annotations

MAX_LISTED = 10  # names or keys listed in one message; the rest are counted


class HubError(RuntimeError):
    """A model folder or Hub repository that cannot be used; the message says why and what to do."""


def describe(error: BaseException) -> str:
    """`Type: message` on one line (the message's whitespace collapsed, a final full stop dropped)."""
    message = " ".join(str(error).split()).rstrip(".")
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def http_status(error: BaseException | None) -> int | None:
    """The HTTP status code of an error that carries a response (httpx, huggingface_hub), else None."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)
