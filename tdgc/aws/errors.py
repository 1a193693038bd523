"""What an AWS error says: its code, and one line for a person."""

from __future__ import annotations

import botocore.exceptions

# What an endpoint that cannot be reached raises: no answer from AWS at all.
UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        status: int | None = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status
    return None


def error_text(exc: BaseException) -> str:
    """One line for an AWS error: its code and message."""
    if isinstance(exc, UNREACHABLE):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def error_code(exc: BaseException) -> str:
    """An AWS error's code ("ThrottlingException", "304"), or "" for anything that is not an AWS answer."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
