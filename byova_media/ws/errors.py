"""The ERROR vocabulary of ``/v1/va``: six codes, each with its HTTP-style status and close code.

The codes and statuses are the published schema's; the WebSocket close code that follows
each ERROR is our decision (docs/transports.md): 1000 is reserved for a normal end and
1011 for our own failures, as the reference documents; the rest follow RFC 6455's meanings.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorCode", "WsProtocolError"]


class ErrorCode(StrEnum):
    """``code`` of an ERROR envelope."""

    UNAUTHORIZED = "unauthorized"
    BAD_REQUEST = "bad_request"
    UNSUPPORTED_MEDIA = "unsupported_media"
    UPSTREAM_ERROR = "upstream_error"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"

    @property
    def status(self) -> int:
        """The HTTP-style ``status`` sent with the code."""
        return _STATUS[self]

    @property
    def close_code(self) -> int:
        """The WebSocket close code that follows an ERROR of this code."""
        return _CLOSE[self]


_STATUS = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNSUPPORTED_MEDIA: 415,
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.RATE_LIMIT: 429,
    ErrorCode.TIMEOUT: 408,
}
_CLOSE = {
    ErrorCode.UNAUTHORIZED: 1008,  # policy violation
    ErrorCode.BAD_REQUEST: 1002,  # protocol error
    ErrorCode.UNSUPPORTED_MEDIA: 1003,  # unsupported data
    ErrorCode.UPSTREAM_ERROR: 1011,  # server error
    ErrorCode.RATE_LIMIT: 1013,  # try again later
    ErrorCode.TIMEOUT: 1008,  # policy violation (the peer went quiet)
}


class WsProtocolError(Exception):
    """A frame or a request broke the protocol: answer ERROR ``code`` and close the socket.

    ``detail`` goes to the peer and the log: it names the rule, never audio, transcripts
    or tokens. ``status`` overrides the code's default (e.g. 404 for an unknown agent).
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        status: int | None = None,
        close_code: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status or code.status
        self.close_code = close_code or code.close_code


def bad_request(detail: str, **kwargs: int) -> WsProtocolError:
    """Shorthand for the most common refusal."""
    return WsProtocolError(ErrorCode.BAD_REQUEST, detail, **kwargs)
